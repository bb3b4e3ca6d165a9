"""Operator controls: the changes the control notebook makes, validated, written and audited.

Each setter checks its value (the widgets' bounds are never trusted), writes it together with an
`operator_actions` row in one transaction, and returns a short message; a refused change writes
only its "rejected" row and raises `ControlError`. The engine reads `trading_assets` and the risk
limits at every tick, so nothing needs restarting.

Closing and the kill switch go through the same exits as the engine's (`Exits.close`): the
bot's resting orders (the venue's stop, a limit entry) are cancelled first, then the sale is
sent exactly once (the client order id is fixed per symbol and minute: a double click is a 422
duplicate, looked up, not a second order) and booked with its P&L; the next cycle writes the
reflection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botlib.core.engine import Engine, client_order_id
from botlib.core.risk import RiskLimits
from botlib.errors import UnknownSymbolError
from botlib.models import AssetSettings
from botlib.ops.limits import load_limits, save_limits
from botlib.ops.operator_log import ControlError, audited, recent_actions
from botlib.storage.store import Store

__all__ = [
    "ANALYSTS",
    "INTERVALS",
    "KILL_PHRASE",
    "ControlError",
    "close_now",
    "close_position",
    "flatten_all",
    "kill_switch",
    "recent_actions",
    "set_analyst",
    "set_interval",
    "set_limits",
    "set_paused",
    "set_position_size",
    "set_stops",
]

log = logging.getLogger(__name__)

INTERVALS = (1, 5, 15, 30, 60)  # minutes between cycles: the bar sizes Alpaca serves
ANALYSTS = ("rules", "openai")
KILL_PHRASE = "FLATTEN ALL"  # typed, not clicked: flattening everything must be deliberate


# engine actions ---------------------------------------------------------------------------
def close_position(engine: Engine, symbol: str) -> str:
    """Cancel the resting orders, then sell the whole position in `symbol` at market now."""
    now = engine.clock.now()
    if engine.broker.position(symbol) is None and not engine.store.resting_intents(symbol, None):
        return f"{symbol}: no position to close"
    cid = client_order_id(symbol, now, "manual")
    note, _ = engine.exits.close(None, None, symbol, cid, "manual", now)
    log.warning("operator closed %s: %s", symbol, note)
    return f"{symbol}: {note}"


def flatten_all(engine: Engine) -> list[str]:
    """Cancel every open order (the bot's through its books, then any other) and close every
    position."""
    now, notes = engine.clock.now(), []
    for intent in engine.store.resting_intents(None, None):
        engine.executor.cancel(intent, now, "kill switch")
        notes.append(f"{intent['symbol']}: cancelled resting order {intent['client_order_id']}")
    for order in engine.broker.open_orders():
        engine.broker.cancel_order(order.id)
        notes.append(f"{order.symbol}: cancelled open order {order.client_order_id}")
    notes.extend(close_position(engine, p.symbol) for p in engine.broker.positions())
    log.warning("kill switch: %s", "; ".join(notes) or "nothing to do")
    return notes


def close_now(
    engine: Engine, symbol: str, *, actor: str | None = None, now: datetime | None = None
) -> str:
    """Close the position in a configured asset now (audited); `now` defaults to the engine's
    clock, so simulated runs record simulated times."""

    def change() -> str:
        _asset(engine.store, symbol)
        return close_position(engine, symbol)

    when = now or engine.clock.now()
    return audited(engine.store, "close", symbol, {}, change, actor, when, atomic=False)


def kill_switch(
    engine: Engine, confirm: str, *, actor: str | None = None, now: datetime | None = None
) -> str:
    """Pause every asset, then cancel open orders and sell every position.

    Only runs when `confirm` is "FLATTEN ALL" (`KILL_PHRASE`; case matters, outer spaces do not);
    anything else is refused and recorded. Pausing comes first so no tick can buy back while
    positions are being sold.
    """

    def change() -> str:
        if not isinstance(confirm, str) or confirm.strip() != KILL_PHRASE:
            raise ControlError(f"kill switch not confirmed: type {KILL_PHRASE} exactly")
        paused = _pause_all(engine.store)
        notes = flatten_all(engine)
        closed = "; ".join(notes) or "no open positions or orders"
        return f"kill switch: paused {', '.join(paused) or 'no assets'}; {closed}"

    when = now or engine.clock.now()
    params = {"confirm": confirm}
    return audited(engine.store, "kill_switch", None, params, change, actor, when, atomic=False)


def _pause_all(store: Store) -> list[str]:
    with store.transaction():
        assets = store.list_assets()
        for asset in assets:
            if not asset.paused:
                store.update_asset(asset.symbol, paused=True)
    return [a.symbol for a in assets]


# settings ---------------------------------------------------------------------------------
def set_paused(
    store: Store, symbol: str, paused: bool, *, actor: str | None = None,
    now: datetime | None = None,
) -> str:  # fmt: skip
    """Pause (no new cycles; exits wait too) or resume one asset from its next tick."""

    def change() -> str:
        if not isinstance(paused, bool):
            raise ControlError(f"paused must be True or False (got {paused!r})")
        _update(store, symbol, paused=paused)
        return f"{symbol}: {'paused' if paused else 'resumed'}"

    action = "pause" if paused is True else "resume"
    return audited(store, action, symbol, {"paused": paused}, change, actor, now)


def set_interval(
    store: Store, symbol: str, minutes: int, *, actor: str | None = None,
    now: datetime | None = None,
) -> str:  # fmt: skip
    """Set how often the asset's cycle runs: 1, 5, 15, 30 or 60 minutes."""

    def change() -> str:
        if isinstance(minutes, bool) or minutes not in INTERVALS:
            allowed = ", ".join(map(str, INTERVALS))
            raise ControlError(f"interval_minutes must be one of {allowed} (got {minutes!r})")
        before = _update(store, symbol, interval_minutes=int(minutes))
        return f"{symbol}: every {int(minutes)} min (was {before.interval_minutes} min)"

    return audited(store, "interval", symbol, {"minutes": minutes}, change, actor, now)


def set_position_size(
    store: Store, symbol: str, pct: float, *, actor: str | None = None,
    now: datetime | None = None,
) -> str:  # fmt: skip
    """Set the position size the asset's entries use, in % of equity (0 < pct <= 100)."""

    def change() -> str:
        value = _percent("position_size_pct", pct, 100)
        before = _update(store, symbol, position_size_pct=value)
        return f"{symbol}: position size {value:g}% (was {before.position_size_pct:g}%)"

    return audited(store, "position_size", symbol, {"pct": pct}, change, actor, now)


def set_stops(
    store: Store, symbol: str, stop_loss_pct: float | None = None,
    take_profit_pct: float | None = None, *, actor: str | None = None,
    now: datetime | None = None,
) -> str:  # fmt: skip
    """Set the stop-loss (0 < % < 100) and/or take-profit (0 < % <= 1000) distances."""
    given = {"stop_loss_pct": stop_loss_pct, "take_profit_pct": take_profit_pct}
    given = {name: value for name, value in given.items() if value is not None}

    def change() -> str:
        if not given:
            raise ControlError("set_stops needs stop_loss_pct and/or take_profit_pct")
        fields = {
            name: _percent(name, value, 100 if name == "stop_loss_pct" else 1000,
                           below=name == "stop_loss_pct")
            for name, value in given.items()
        }  # fmt: skip
        before = _update(store, symbol, **fields)
        return f"{symbol}: " + ", ".join(
            f"{name} {value:g}% (was {getattr(before, name):g}%)" for name, value in fields.items()
        )

    return audited(store, "stops", symbol, given, change, actor, now)


def set_analyst(
    store: Store, symbol: str, analyst: str | None, *, actor: str | None = None,
    now: datetime | None = None, known: Sequence[str] = (),
) -> str:  # fmt: skip
    """Choose the asset's analyst: "rules", "openai", one of `known` (the arena file's names:
    promoting a shadow to live), or None for the configured default."""

    def change() -> str:
        if analyst is not None and analyst not in (*ANALYSTS, *known):
            arena = f", or an arena analyst ({', '.join(known)})" if known else ""
            raise ControlError(
                f"analyst must be 'rules' or 'openai'{arena} (or None for the configured"
                f" default); got {analyst!r}"
            )
        before = _update(store, symbol, analyst=analyst)
        return f"{symbol}: analyst {analyst or 'default'} (was {before.analyst or 'default'})"

    return audited(store, "analyst", symbol, {"analyst": analyst}, change, actor, now)


def set_limits(
    store: Store, base: RiskLimits, *, actor: str | None = None,
    now: datetime | None = None, **changes: Any,
) -> str:  # fmt: skip
    """Override account-wide risk limits (`RiskLimits` fields), picked up at the next tick.

    `base` is what the environment sets (`Settings.limits`); the overrides go on top of it.
    """
    when = now or datetime.now(UTC)

    def change() -> str:
        if not changes:
            raise ControlError(f"set_limits needs one of: {', '.join(RiskLimits.model_fields)}")
        before = load_limits(store, base)
        after = save_limits(store, base, when, **changes)
        return "risk limits: " + ", ".join(
            f"{name} {getattr(after, name):g} (was {getattr(before, name):g})" for name in changes
        )

    return audited(store, "limits", None, changes, change, actor, when)


# shared -----------------------------------------------------------------------------------
def _percent(name: str, value: object, high: float, *, below: bool = False) -> float:
    """Return `value` as a float in (0, high] (or (0, high) when `below`), else refuse it."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    within = 0 < number < high if below else 0 < number <= high  # False for NaN
    if not within:
        top = f"< {high:g}" if below else f"<= {high:g}"
        raise ControlError(f"{name} must be a number > 0 and {top} (got {value!r})")
    return number


def _asset(store: Store, symbol: str) -> AssetSettings:
    try:
        return store.get_asset(symbol)
    except UnknownSymbolError as exc:
        raise ControlError(str(exc)) from None


def _update(store: Store, symbol: str, **fields: Any) -> AssetSettings:
    """Write `fields` to a configured asset's row; return its settings before the change."""
    before = _asset(store, symbol)
    store.update_asset(symbol, **fields)
    return before
