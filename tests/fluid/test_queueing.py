"""The queueing formulas against the textbook sums, and the fluid queue's backlog by hand."""
import math

import numpy as np
import pytest

from sim.fluid.queues import pool_flows
from sim.models.queueing import erlang_b, erlang_c, mgc_wait_s, mmc_wait_s, wait_exceeds


def erlang_c_sum(c: int, a: float) -> float:
    """The independent reference: Erlang C from its defining sums (tests/validation/test_mmc.py)."""
    term = sum(a ** k / math.factorial(k) for k in range(c))
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (term + top)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.5), (8, 7.2), (16, 12.0), (40, 38.5), (100, 80.0)])
def test_erlang_c_matches_the_defining_sums(c, a):
    assert erlang_c(c, a) == pytest.approx(erlang_c_sum(c, a), rel=1e-9)


def test_erlang_b_is_the_loss_formula_and_extends_between_integers():
    a = 3.0
    b = sum(a ** k / math.factorial(k) for k in range(5))
    assert erlang_b(4, a) == pytest.approx(a ** 4 / math.factorial(4) / b, rel=1e-12)
    assert erlang_b(4, a) > erlang_b(4.5, a) > erlang_b(5, a)  # fewer servers, more blocking
    assert erlang_b(0, a) == 1.0 and erlang_b(4, 0.0) == 0.0


def test_mmc_wait_and_its_tail():
    c, a, s = 8, 7.2, 1.0
    w = erlang_c_sum(c, a) * s / (c - a)
    assert mmc_wait_s(c, a, s) == pytest.approx(w, rel=1e-9)
    assert mmc_wait_s(8, 8.0, 1.0) == math.inf
    # M/M/c: P(W > t) = C exp(-(c mu - lambda) t).
    t = 2.0
    assert wait_exceeds(t, erlang_c(c, a), w) == pytest.approx(erlang_c_sum(c, a) * math.exp(-(c - a) * t))


def test_allen_cunneen_is_pollaczek_khinchine_for_one_server():
    lam, s, scv = 0.5, 1.0, 0.0  # M/D/1: Wq = rho s / (2 (1 - rho))
    assert mgc_wait_s(1, lam * s, s, scv) == pytest.approx(0.5 * 1.0 / (2 * 0.5))


def test_an_overloaded_pool_carries_its_backlog_into_the_next_step():
    # 10 servers of 1 s: 10/s. 15/s for 100 s grows the queue by 500, then 5/s drains it at 5/s.
    lam = np.array([[15.0], [5.0], [5.0]])
    one = np.ones((3, 1))
    flow = pool_flows(lam, one, one, 10 * one, np.array([100.0, 50.0, 100.0]), np.array([math.inf]))
    assert flow.backlog_end[:, 0].tolist() == pytest.approx([500.0, 250.0, 0.0])
    assert flow.busy[:2, 0].tolist() == [10.0, 10.0]
    assert flow.queue[0, 0] == pytest.approx(250.0)  # the mean of a line from 0 to 500
    assert flow.shift_s[0, 0] == pytest.approx(25.0)  # the mean backlog ahead / 10 per s
    # The third step drains 250 in 50 s (half the step) at 5/s, then is steady (rho 0.5).
    assert flow.queue[2, 0] == pytest.approx(0.5 * 125.0 + 0.5 * 5.0 * mmc_wait_s(10, 5.0, 1.0))
    assert flow.busy[2, 0] == pytest.approx(0.5 * 10 + 0.5 * 5.0)


def test_a_timeout_caps_the_backlog_and_drops_the_excess():
    lam, one = np.array([[20.0]]), np.ones((1, 1))
    flow = pool_flows(lam, one, one, 10 * one, np.array([100.0]), np.array([30.0]))
    # The queue stops at 10/s x 30 s = 300 (after 30 s); the 10/s excess for 70 s is dropped.
    assert flow.backlog_end[0, 0] == pytest.approx(300.0)
    assert flow.dropped[0, 0] * 20.0 * 100.0 == pytest.approx(700.0)
