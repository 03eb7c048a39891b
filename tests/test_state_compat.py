"""Strategy states saved before the phases and an interval's side were enums (strings in Redis,
`bot:{bot}:state`) still load, to the same values, and save back byte for byte: a restarted
runner carries on where the old one stopped.

The grid and DCA documents are what the strategies wrote before the change (commit e0ed7f4),
unedited; the fractal one is written by hand in the same format."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from shared.messages import OrderStatus, PlaceOrder, Side
from shared.strategy.testing import Driver
from strategies.dca import DcaPhase, DcaStrategy
from strategies.fractal_trailing import FractalPhase, FractalTrailingStrategy
from strategies.grid import GridStrategy
from strategies.grid_state import GridEnd, GridPhase, IntervalSide

# a grid started without its opening buy: buys below, empty intervals above
GRID_NO_INITIAL_BUY = b'{"seq":2,"orders":{"t1-000001":{"cid":"t1-000001","side":"BUY","order_type":"LIMIT","tag":"b0","quantity":"1.11111","price":"90","created":119999},"t1-000002":{"cid":"t1-000002","side":"BUY","order_type":"LIMIT","tag":"b1","quantity":"1.05263","price":"95","created":119999}},"phase":"active","prices":["90","95","100","105","110"],"qtys":["1.11111","1.05263","1","0.95238"],"intervals":[["B","t1-000001","0","0"],["B","t1-000002","0","0"],["","","0","0"],["","","0","0"]]}'
# its opening buy out: the sells wait for its base
GRID_WAITING = b'{"seq":3,"orders":{"t1-000001":{"cid":"t1-000001","side":"BUY","order_type":"MARKET","tag":"init","quantity":"1.95433","created":119999},"t1-000002":{"cid":"t1-000002","side":"BUY","order_type":"LIMIT","tag":"b0","quantity":"1.11111","price":"90","created":119999},"t1-000003":{"cid":"t1-000003","side":"BUY","order_type":"LIMIT","tag":"b1","quantity":"1.05263","price":"95","created":119999}},"phase":"active","prices":["90","95","100","105","110"],"qtys":["1.11111","1.05263","1","0.95238"],"intervals":[["B","t1-000002","0","0"],["B","t1-000003","0","0"],["W","","0","0"],["W","","0","0"]],"init_cid":"t1-000001"}'
# the stop-loss hit: cancelling, lots on sale
GRID_STOPPING = b'{"seq":5,"orders":{"t1-000002":{"cid":"t1-000002","side":"BUY","order_type":"LIMIT","tag":"b0","quantity":"1.11111","price":"90","cancel_requested":true,"created":119999},"t1-000003":{"cid":"t1-000003","side":"BUY","order_type":"LIMIT","tag":"b1","quantity":"1.05263","price":"95","cancel_requested":true,"created":119999},"t1-000004":{"cid":"t1-000004","side":"SELL","order_type":"LIMIT","tag":"s3","quantity":"1","price":"105","cancel_requested":true,"created":120000},"t1-000005":{"cid":"t1-000005","side":"SELL","order_type":"LIMIT","tag":"s4","quantity":"0.95238","price":"110","cancel_requested":true,"created":120000}},"position":{"base":"1.95433","cost":"197.38733","bought":"1.95433","fees_quote":"0.00000","fees_base":"0"},"mode":"stopped","recent":["t1-000001"],"phase":"stopping","prices":["90","95","100","105","110"],"qtys":["1.11111","1.05263","1","0.95238"],"intervals":[["B","t1-000002","0","0"],["B","t1-000003","0","0"],["S","t1-000004","1","101"],["S","t1-000005","0.95238","96.19038"]],"spare":"0.00195","spare_cost":"0.19695","ended":"stop_loss"}'
DCA_OPENING = b'{"seq":1,"orders":{"t1-000001":{"cid":"t1-000001","side":"BUY","order_type":"MARKET","tag":"base1","quote_quantity":"300.00000000","created":119999}},"phase":"opening","cycle":1,"ladder_raw":"300","target":"0.035","base_cid":"t1-000001"}'
FRACTAL_DONE = (
    b'{"seq":4,"phase":"done","entry":"100","quantity":"1","stop":"97.5","stop_moves":2,"sold_quote":"97.4"}'
)


@pytest.mark.parametrize(
    ("doc", "phase", "sides", "ended"),
    [
        (GRID_NO_INITIAL_BUY, GridPhase.ACTIVE, "BB  ", GridEnd.NONE),
        (GRID_WAITING, GridPhase.ACTIVE, "BBWW", GridEnd.NONE),
        (GRID_STOPPING, GridPhase.STOPPING, "BBSS", GridEnd.STOP_LOSS),
    ],
)
def test_an_old_grid_state_loads_to_the_same_values_and_saves_unchanged(doc, phase, sides, ended):
    strategy = GridStrategy()
    state = strategy.decode_state(doc)
    assert state.phase is phase and state.ended is ended
    letters = {" ": IntervalSide.IDLE, "B": IntervalSide.BUY, "S": IntervalSide.SELL, "W": IntervalSide.WAIT}
    assert [iv.side for iv in state.intervals] == [letters[c] for c in sides]
    assert all(type(iv.side) is IntervalSide for iv in state.intervals)
    assert strategy.encode_state(state) == doc


def test_an_old_grid_state_carries_on():
    """The loaded stop-loss state goes on as it would have: the last cancel confirmed, the
    position is sold at market and the grid ends."""
    d = Driver(GridStrategy(), {"lower": "90", "upper": "110", "levels": 5, "quote_per_level": "100",
                                "stop_loss": "80"})  # fmt: skip
    d.state, d.now = d.strategy.decode_state(GRID_STOPPING), 120_000
    for cid in ("t1-000002", "t1-000003", "t1-000004"):
        assert not [c for c in d.update(cid, OrderStatus.CANCELED) if isinstance(c, PlaceOrder)]
    sale = [c for c in d.update("t1-000005", OrderStatus.CANCELED) if isinstance(c, PlaceOrder)]
    assert [(c.side, c.quantity, d.state.orders[c.cid].tag) for c in sale] == [
        (Side.SELL, D("1.95433"), "exit")
    ]
    assert d.state.phase is GridPhase.ENDED and d.state.ended is GridEnd.STOP_LOSS


def test_old_dca_and_fractal_states_load_to_the_same_values_and_save_unchanged():
    dca = DcaStrategy().decode_state(DCA_OPENING)
    assert dca.phase is DcaPhase.OPENING and DcaStrategy().encode_state(dca) == DCA_OPENING
    fractal = FractalTrailingStrategy().decode_state(FRACTAL_DONE)
    assert (
        fractal.phase is FractalPhase.DONE and FractalTrailingStrategy().encode_state(fractal) == FRACTAL_DONE
    )


def test_a_phase_no_version_wrote_is_refused():
    with pytest.raises(Exception, match="phase"):
        GridStrategy().decode_state(b'{"phase":"paused"}')
    with pytest.raises(Exception, match="intervals"):
        GridStrategy().decode_state(b'{"intervals":[["X","","0","0"]]}')
