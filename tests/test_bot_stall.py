"""A bot's input watch (services/strategy_runner/stall.py): stalled after its limit without a
candle, reported once when the silence starts and once when candles come again."""

from __future__ import annotations

from services.strategy_runner.stall import InputWatch, input_notification, is_stalled, stall_after_s


def test_the_limit_is_three_intervals_at_least_30_s_or_the_bots_own() -> None:
    assert stall_after_s("1m") == 180
    assert stall_after_s("1s") == 30
    assert stall_after_s("1h", configured=10) == 10
    assert stall_after_s("1m", configured=1) == 10  # never below two heartbeats


def test_a_stall_is_reported_once_each_way() -> None:
    watch = InputWatch(limit_s=10, last_s=0.0, last_ms=0)
    assert [watch.check(t) for t in (5, 9.9)] == [None, None]
    assert watch.check(10) == "stalled" and watch.stalled
    assert [watch.check(t) for t in (11, 60)] == [None, None]  # once, not once a check
    watch.seen(61, 61_000)
    assert watch.check(62) == "recovered" and not watch.stalled
    assert watch.check(63) is None


def test_status_reads_the_stall_from_the_last_input_time_not_the_runners_flag() -> None:
    info = InputWatch(limit_s=10, last_s=0, last_ms=1_000, stalled=True).info()
    assert not is_stalled(info, now_ms=5_000)  # candles came since the runner's last check
    assert is_stalled(info, now_ms=11_000)
    assert not is_stalled({"last_input_ms": "x"}, now_ms=11_000)


def test_the_notifications_share_one_id_per_episode_and_say_what_to_check() -> None:
    stalled = input_notification("b1", "md:candles:sim:BTCUSDT:1m", "stalled", 1_000, 31_000)
    again = input_notification("b1", "md:candles:sim:BTCUSDT:1m", "stalled", 1_000, 41_000)
    back = input_notification("b1", "md:candles:sim:BTCUSDT:1m", "recovered", 1_000, 50_000)
    assert stalled.id == again.id != back.id
    assert stalled.kind == "bot_stalled" and stalled.level == "warning" and "30s" in stalled.text
    assert "market gateway" in stalled.text and back.level == "info"
