"""The failure timeline's data, by hand."""
import numpy as np

from sim.report.failures import down_series, failures_figure


def row(kind, region, pool, start, end, hit="idle"):
    return {"kind": kind, "region": region, "pool": pool, "replicas": "1", "start_s": str(start),
            "end_s": str(end), "hit": hit}


def test_replicas_down_is_a_step_function_of_failures_and_repairs():
    rows = [row("node", "a", "p", 3600, 7200), row("node", "a", "p", 5400, 9000), row("node", "a", "p", 9000, 99999),
            row("region", "a", "*", 100, 200, "region")]
    times, counts = down_series(rows, 36000.0)["a/p"]
    # down at 1 h, 1.5 h; one repaired at 2 h; at 2.5 h one repaired and one fails; the last
    # repair falls after the run.
    assert np.allclose(times, [0, 1, 1.5, 2, 2.5, 2.5, 10])
    assert list(counts) == [0, 1, 2, 1, 0, 1, 1]  # at 2.5 h the repair is applied before the failure
    figure = failures_figure(rows, 36000.0)
    assert len(figure.axes) == 2  # replicas down, and one lane for the region outage
