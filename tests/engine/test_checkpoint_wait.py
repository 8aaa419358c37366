"""A job waits for its newest checkpoint when that is cheaper than computing again, by hand;
placement sees where checkpoints are."""
import csv

import pytest

from sim.engine.training_view import PlacementViews
from sim.records import JobChanged
from tests.conftest import run_cli
from tests.engine.test_failures import REPLICATED
from tests.traced import traced_text

HOUR = 3600.0
NOT_REPLICATED = REPLICATED.replace("replicate_to: [away]", "replicate_to: []")


def run_job(tmp_path, write_yaml, text):
    out = tmp_path / "run"
    assert run_cli("run", str(write_yaml(text)), "--out", str(out)).code == 0
    (job,) = list(csv.DictReader(open(out / "jobs.csv")))
    return job


def test_a_short_outage_is_waited_out(tmp_path, write_yaml):
    # REPLICATED without replication: the 80 GPU-hour job (10 h on 8 GPUs, checkpoints every
    # hour of compute, 6 min writes, 12 min restart) has 2 h of compute saved, in home only,
    # when home goes dark at 2.5 h. Outage of 1 h (scheduled: its end is known): waiting
    # 1 h is cheaper than computing those 2 h again elsewhere. It restarts at home at 3.5 h
    # and ends at 3.5 + 0.2 + 8 + 7 x 0.1 = 12.4 h, losing only the 0.3 h since its last
    # checkpoint (2.4 GPU-hours).
    text = NOT_REPLICATED.replace("duration: 10h}]", "duration: 1h}]")
    job = run_job(tmp_path, write_yaml, text)
    assert job["regions"] == "home"
    assert float(job["end_s"]) == pytest.approx(12.4 * HOUR, abs=0.01)
    assert float(job["lost_gpu_h"]) == pytest.approx(2.4, abs=1e-3)
    events = [(r.t_s, r.event) for r in traced_text(text).of(JobChanged)]
    assert (9000.0, "waiting") in events and (12600.0, "started") in events


def test_a_long_outage_is_not_waited_out(tmp_path, write_yaml):
    # The same with the 10 h outage of REPLICATED: waiting 10 h costs more than the 2 h of
    # compute lost by starting again in away (the case of test_failures.py: 48,960 s).
    job = run_job(tmp_path, write_yaml, NOT_REPLICATED)
    assert job["regions"] == "away" and float(job["end_s"]) == pytest.approx(48960, abs=0.01)


def test_placement_sees_checkpoint_locations(monkeypatch):
    # At the interruption (2.5 h) of the replicated case, the newest checkpoint (2 h of
    # compute done) is in home and away; home is dark. The view offers away, where
    # resuming costs nothing beyond the newest checkpoint (its copy is local there).
    seen = []
    original = PlacementViews.view

    def spy(self, now, queue, jobs):
        view = original(self, now, queue, jobs)
        seen.append(view)
        return view
    monkeypatch.setattr(PlacementViews, "view", spy)
    traced_text(REPLICATED)
    after = [v for v in seen if v.t_s >= 9000.0 and v.queue]
    job = after[0].queue[0]
    assert job.checkpoint_regions == ("away", "home")
    assert job.resume_s[1] == pytest.approx(0.0)
    # Without replication only home (dark) holds it: resuming in away means computing the
    # 2 h of compute again (the full run time of 10 h was 36,000 s of compute).
    seen.clear()
    traced_text(NOT_REPLICATED)
    job = [v for v in seen if v.t_s >= 9000.0 and v.queue][0].queue[0]
    assert job.checkpoint_regions == ("home",) and job.resume_s[1] == pytest.approx(2 * HOUR)
