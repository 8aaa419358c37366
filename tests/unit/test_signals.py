import numpy as np
import pytest

from sim.metrics.signals import StepSignal, bucket_edges


def test_bucket_edges_last_shorter():
    assert bucket_edges(0, 10, 4).tolist() == [0, 4, 8, 10]


def test_step_signal_exact_means():
    s = StepSignal()
    s.set(0, 2.0)
    s.set(3, 5.0)
    s.set(3, 6.0)  # same instant: last wins
    # [0,3): 2, [3,..): 6 -> mean over [0,4) = (6 + 6) / 4 = 3; over [2,6) = (2 + 18) / 4 = 5
    assert s.means(np.array([0.0, 4.0, 6.0])).tolist() == pytest.approx([3.0, 6.0])
    assert s.mean_over(2, 6) == pytest.approx(5.0)
    assert s.values_between(3, 10).tolist() == [6.0]


def test_signal_is_zero_before_first_change():
    s = StepSignal()
    s.set(5, 10.0)
    assert s.mean_over(0, 10) == pytest.approx(5.0)


def test_signal_refuses_time_travel():
    s = StepSignal()
    s.set(5, 1.0)
    with pytest.raises(ValueError):
        s.set(4, 1.0)
