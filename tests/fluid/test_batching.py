"""The batching replica's fluid equilibrium: a fixed point of the iteration model, below
the throughput ceiling, and Little's law."""
import pytest

from sim.fluid.batching import BatchingPool, Tokens
from sim.scenario import load_scenario
from sim.world import build_world
from tests.conftest import SCENARIOS


@pytest.fixture(scope="module")
def pool() -> BatchingPool:
    loaded = load_scenario(SCENARIOS / "default.yaml")
    world = build_world(loaded.scenario)
    return BatchingPool.of(world.pools[0], Tokens.of(loaded.scenario.inference[0]))


@pytest.mark.parametrize("lam", [0.05, 0.5, 2.0, 5.0])
def test_the_iteration_time_is_a_fixed_point(pool, lam):
    tau = pool.tau_ms(lam)
    assert pool._iteration_ms(lam, tau) == pytest.approx(tau, rel=1e-6)


def test_the_iteration_time_grows_with_load_up_to_the_ceiling(pool):
    taus = [pool.tau_ms(lam) for lam in (0.1, 1.0, 3.0, 6.0)]
    assert taus == sorted(taus) and taus[-1] <= pool.saturated_tau_ms
    assert pool.tau_ms(2 * pool.max_rate) == pool.saturated_tau_ms


def test_the_ceiling_is_a_full_batch_by_littles_law(pool):
    t = pool.tokens
    assert pool.max_rate * t.decodes * pool.saturated_tau_ms / 1000.0 == pytest.approx(pool.batch_cap)
    assert pool.batch_cap <= pool.max_batch
    assert pool.batch_cap * t.context <= pool.kv_capacity


def test_token_moments_include_the_shared_prompt():
    loaded = load_scenario(SCENARIOS / "geo_cache.yaml")
    t = Tokens.of(loaded.scenario.inference[0])
    assert t.input_mean == pytest.approx(300 + 3000)  # share 1: every request opens with one
    assert t.output_mean == 120
