"""The exits a trade declares: take-profit levels, a stop loss (fixed or trailing), a trailing
take profit, a break-even move and a time limit (3Commas' SmartTrade, NautilusTrader's brackets).

Only the declaration lives here, validated once where it is built (a bot's code, `automata trade`,
Telegram, the dashboard); shared/strategy/smart.py carries the exits out, the same code in the
runner and in the backtester. Fractions, not percent: 0.02 is 2 %.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

_ZERO = Decimal(0)
_ONE = Decimal(1)


def _decimals(owner: msgspec.Struct, *names: str) -> None:
    """Numbers written in a bot's code as floats or ints (`stop_loss=0.005`) are refused by name:
    money and fractions are Decimal (a float's 0.1 is not 0.1), and the checks below compare them."""
    for name in names:
        value = getattr(owner, name)
        if value is not None and not isinstance(value, Decimal):
            raise ValueError(
                f'{name} must be a Decimal, e.g. Decimal("{value}"), got {type(value).__name__} {value!r}'
            )


def _fraction(name: str, value: Decimal | None) -> None:
    if value is not None and not (value.is_finite() and _ZERO < value < _ONE):
        raise ValueError(f"{name} must be a fraction in (0, 1) (0.02 is 2 %), got {value}")


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One take-profit level: `gain` above the entry price (0.02: +2 %) or a fixed `price`, for
    `share` of the position (None: an equal part of what the targets with a share leave; shares
    given to every target add up to 1, Exits checks)."""

    gain: Decimal | None = None
    price: Decimal | None = None
    share: Decimal | None = None

    def __post_init__(self) -> None:
        _decimals(self, "gain", "price", "share")
        if (self.gain is None) == (self.price is None):
            raise ValueError("a take-profit target takes exactly one of gain and price")
        if self.gain is not None and not (self.gain.is_finite() and self.gain > 0):
            raise ValueError(f"a target's gain must be above 0, got {self.gain}")
        if self.price is not None and not (self.price.is_finite() and self.price > 0):
            raise ValueError(f"a target's price must be above 0, got {self.price}")
        if self.share is not None and not (self.share.is_finite() and _ZERO < self.share <= _ONE):
            raise ValueError(f"a target's share must be in (0, 1], got {self.share}")


class Exits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """How a long position opened by a smart trade is closed (a sell of the base bought)."""

    take_profits: tuple[Target, ...] = ()
    stop_loss: Decimal | None = None  # below the entry price, as a fraction (0.01: -1 %)
    stop_price: Decimal | None = None  # or a fixed stop price
    trailing_stop: Decimal | None = (
        None  # the stop follows the highest price since the entry, this far below it
    )
    # once the last target's price is reached, that share is not sold there: it is sold when
    # the price falls this fraction from its highest since
    trailing_take_profit: Decimal | None = None
    break_even: bool = False  # once the first target has filled, the stop moves up to the entry price
    time_limit_s: int | None = None  # what is still held this long after the entry filled is sold at market

    def __post_init__(self) -> None:
        _decimals(self, "stop_loss", "stop_price", "trailing_stop", "trailing_take_profit")
        self._check_targets()
        _fraction("stop_loss", self.stop_loss)
        _fraction("trailing_stop", self.trailing_stop)
        _fraction("trailing_take_profit", self.trailing_take_profit)
        if self.stop_loss is not None and self.stop_price is not None:
            raise ValueError("give stop_loss or stop_price, not both")
        if self.stop_price is not None and not (self.stop_price.is_finite() and self.stop_price > 0):
            raise ValueError(f"stop_price must be above 0, got {self.stop_price}")
        self._check_shares()
        if self.trailing_take_profit is not None and not self.take_profits:
            raise ValueError("a trailing take profit needs a target to start trailing from")
        if self.break_even and not self.take_profits:
            raise ValueError(
                "break_even needs a target: the stop moves up to the entry once a target has sold"
            )
        limit = self.time_limit_s
        if limit is not None and (type(limit) is not int or limit <= 0):
            raise ValueError(f"time_limit_s must be a whole number of seconds above 0, got {limit!r}")

    def _check_targets(self) -> None:
        """A bot's code may hand a Target alone, or a gain, where a tuple of Targets goes."""
        targets = self.take_profits
        wrong = (
            [t for t in targets if not isinstance(t, Target)]
            if isinstance(targets, tuple | list)
            else [targets]
        )
        if wrong:
            raise ValueError(
                f'take_profits must be a tuple of Target, e.g. (Target(gain=Decimal("0.02")),), got {wrong[0]!r}'
            )

    def _check_shares(self) -> None:
        """The shares split the whole position: all given, they add up to 1 (else the last target
        would sell another share than it says); some missing, the others leave those a part."""
        given = [t.share for t in self.take_profits if t.share is not None]
        shares, free = sum(given, _ZERO), len(self.take_profits) - len(given)
        if shares > _ONE:
            raise ValueError(f"the targets' shares add up to {shares}, more than the whole position")
        if given and not free and shares != _ONE:
            raise ValueError(
                f"the targets' shares add up to {shares}, not the whole position (1): make them add up "
                "to 1, or give the last target no share and it sells the rest"
            )
        if free and shares == _ONE:
            raise ValueError(
                f"the targets' shares add up to 1, leaving nothing for the {free} target"
                f"{'s' if free > 1 else ''} without a share"
            )
