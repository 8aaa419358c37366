import pytest

from sim.units import format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("90s", 90.0), ("15m", 900.0), ("24h", 86400.0), ("7d", 604800.0),
    ("1.5h", 5400.0), (" 2 h ", 7200.0), (30, 30.0), (0.25, 0.25),
])
def test_parse_duration_accepts_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["1 hour", "h", "-5m", "5w", "", True, None, [1], float("nan"), -1])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(bad)


def test_format_duration_picks_exact_unit():
    assert [format_duration(s) for s in (86400, 3600, 900, 90, 0.5)] == ["1d", "1h", "15m", "90s", "500ms"]
