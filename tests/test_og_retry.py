"""The order gateway's one retry helper (services/order_gateway/retry.py): its policy per error
class, its jittered, capped backoff, and where it stops (attempts, deadline, a stop).

The policy is driven with a recording clock and sleep (what the helper asked to wait is the
behaviour; no test waits or times anything); the venue's own answers (a 429 with Retry-After,
503s, an unknown order) come from the real paper venue through the real python-binance."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError

from services.order_gateway.reconcile import look_up
from services.order_gateway.reconcile_rules import NOT_FOUND, NoAnswer
from services.order_gateway.retry import RESOLVE, Backoff, Retry
from services.order_gateway.venues import base as errors  # the classes the policy sorts
from services.order_gateway.venues.binance import BinanceAdapter
from shared.messages import OrderStatus, OrderType, PlaceOrder, Side
from shared.order_record import new_record
from shared.order_report import OrderReport
from tests.helpers.sim import sim_fixture

sim = sim_fixture()
POLICY = Backoff(0.1, 1.0, attempts=6)


class Clock:
    """A clock that moves only when the helper sleeps, and the waits it asked for."""

    def __init__(self) -> None:
        self.now, self.waits, self.resyncs = 0.0, [], 0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def resync(self) -> None:
        self.resyncs += 1

    def retry(self, rand: float = 0.5, stopped=lambda: False) -> Retry:
        return Retry(
            self.resync, sleep=self.sleep, clock=lambda: self.now, rand=lambda: rand, stopped=stopped
        )


def failing(*errors: BaseException, result: str = "done"):
    """An operation that fails with each error in turn, then succeeds; counts its calls."""
    calls = []

    async def op() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return op, calls


async def test_unknown_outcomes_back_off_exponentially_with_jitter_up_to_the_cap():
    clock = Clock()
    op, calls = failing(*(errors.OutcomeUnknown("timeout") for _ in range(4)), errors.MalformedReply("{}"))
    assert await clock.retry(rand=0.0).run(op, POLICY, what="query") == "done"
    assert clock.waits == [0.05, 0.1, 0.2, 0.4, 0.5]  # half of 0.1, 0.2, 0.4, 0.8, then the cap 1.0
    assert len(calls) == 6
    clock = Clock()
    op, _ = failing(errors.OutcomeUnknown("timeout"), errors.OutcomeUnknown("timeout"))
    await clock.retry(rand=0.999).run(op, POLICY, what="query")
    assert clock.waits == pytest.approx([0.09995, 0.1999])  # the step's other end


@given(failures=st.integers(1, 200), rand=st.floats(0, 1, exclude_max=True))
def test_every_wait_is_within_its_step_and_never_past_the_cap(failures, rand):
    step = min(POLICY.cap, POLICY.base * 2 ** (failures - 1))
    assert step / 2 <= POLICY.delay(failures, rand) <= step <= POLICY.cap


async def test_a_rate_limit_waits_what_the_venue_says_and_a_skewed_clock_is_resynced_first():
    clock = Clock()
    op, _ = failing(
        errors.RateLimited("429", retry_after=7.5), errors.ClockSkew("-1021"), RedisConnectionError("reset")
    )
    assert await clock.retry().run(op, POLICY, what="query") == "done"
    assert (
        clock.waits == pytest.approx([7.5, 0.0, 0.3]) and clock.resyncs == 1
    )  # the third failure: a 0.4 s step


@pytest.mark.parametrize(
    "error",
    [errors.Rejected("-2010"), errors.DuplicateOrder("-2010 duplicate"), errors.OrderNotFound("-2013"),
     errors.AuthError("-2015"), errors.Banned("418", retry_after=60), ValueError("not a venue failure")],
)  # fmt: skip
async def test_what_retrying_cannot_help_goes_straight_to_the_caller(error):
    clock = Clock()
    op, calls = failing(error)
    with pytest.raises(type(error)):
        await clock.retry().run(op, POLICY, what="place")
    assert (len(calls), clock.waits) == (1, [])


async def test_a_place_is_never_repeated_blind_on_an_unknown_outcome():
    """Its outcome is resolved by querying the cid; a rate limit or skew (refused before
    anything happened) is still retried."""
    clock = Clock()
    op, calls = failing(errors.RateLimited("429", retry_after=1), errors.OutcomeUnknown("504"))
    with pytest.raises(errors.OutcomeUnknown):
        await clock.retry().run(op, POLICY, what="place", repeatable=False)
    assert (len(calls), clock.waits) == (2, [1])


async def test_retries_end_after_the_attempts_the_deadline_or_a_stop_with_the_last_failure():
    clock = Clock()
    op, calls = failing(*(errors.OutcomeUnknown(f"try {n}") for n in range(10)))
    with pytest.raises(errors.OutcomeUnknown, match="try 5"):
        await clock.retry().run(op, POLICY, what="query")
    assert len(calls) == POLICY.attempts == 6
    clock = Clock()
    op, calls = failing(*(errors.OutcomeUnknown("timeout") for _ in range(10)))
    with pytest.raises(errors.OutcomeUnknown):  # 0.075 + 0.15 + 0.3; the next 0.6 would end past 1 s
        await clock.retry().run(op, Backoff(0.1, 1.0, deadline_s=1.0), what="query")
    assert clock.waits == pytest.approx([0.075, 0.15, 0.3]) and len(calls) == 4
    clock = Clock()
    op, calls = failing(*(errors.OutcomeUnknown("timeout") for _ in range(10)))
    with pytest.raises(errors.OutcomeUnknown):
        await clock.retry(stopped=lambda: len(calls) >= 2).run(op, Backoff(0.1, 1.0), what="connect")
    assert len(calls) == 2


async def test_a_start_up_also_retries_what_a_request_would_not():
    clock = Clock()
    op, calls = failing(errors.AuthError("-2015"), OSError("refused"))
    assert await clock.retry().run(op, POLICY, what="connect", also=(errors.AuthError, OSError)) == "done"
    assert clock.waits == pytest.approx([0.075, 0.15])


async def test_the_venues_answers_through_the_policy(sim):
    """The paper venue answers a query with a 429 (Retry-After) and two 503s before the order:
    the helper waits what the venue said, then backs off, then has the report. An order it
    does not know is the caller's case at once; still failing after the retries, no answer."""
    adapter = BinanceAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        cmd = PlaceOrder(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", side=Side.BUY,
                         order_type=OrderType.MARKET, quantity=Decimal("0.01"))  # fmt: skip
        await adapter.place(cmd, cmd.quantity, None, None)
        query = {"path": "/api/v3/order", "method": "GET"}
        sim.control.fault("rate_limit", match=query, retry_after=1)
        sim.control.fault("error", count=2, match=query, http_status=503)
        clock = Clock()
        answer = await look_up(new_record(cmd, 1), adapter, clock.retry(rand=0.0))
        assert isinstance(answer, OrderReport) and answer.status is OrderStatus.FILLED
        assert clock.waits == pytest.approx([1, 0.05, 0.1])  # failures 2 and 3: steps of 0.1 and 0.2 s
        never_sent = msgspec.structs.replace(new_record(cmd, 1), cid="b1-000002")
        clock = Clock()
        assert await look_up(never_sent, adapter, clock.retry()) is NOT_FOUND and clock.waits == []
        sim.control.fault("error", count=RESOLVE.attempts, match=query, http_status=503)
        answer = await look_up(new_record(cmd, 1), adapter, clock.retry())
        assert isinstance(answer, NoAnswer) and answer.reason.startswith("OutcomeUnknown")
        assert len(clock.waits) == RESOLVE.attempts - 1
    finally:
        await adapter.close()
