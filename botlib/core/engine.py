"""One trading cycle for one asset: bars, indicators, exits, analyst, risk, order, records.

The engine owns nothing external: market, broker, analyst, store and clock are passed in, so the
demo, the tests and (later) backtests and Alpaca runs share this exact code path.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from botlib.clock import SystemClock, iso
from botlib.core.cycle_alerts import CycleAlerts
from botlib.core.cycle_features import FeatureSource, LiveFeatures
from botlib.core.decision_checks import decision_problem
from botlib.core.due import skip_reason, skip_reason_in
from botlib.core.failpoints import failpoint
from botlib.core.log_tags import log_context
from botlib.core.orders.execution import Executor
from botlib.core.orders.exits import Exits, exit_reason
from botlib.core.orders.protection import Protection
from botlib.core.orders.reconcile import reconcile
from botlib.core.reflection import reflect_pending
from botlib.core.risk import RiskLimits, RiskVerdict, check, trading_status
from botlib.errors import BotlibError, StaleDataError
from botlib.features.indicators import checked_price
from botlib.models import (
    TIMEFRAMES,
    Action,
    AssetSettings,
    CycleReport,
    CycleStatus,
    Decision,
    Position,
)
from botlib.ports import (
    AlertSink,
    Analyst,
    AnalystResult,
    Broker,
    CallRecord,
    Clock,
    MarketContext,
    MarketData,
)
from botlib.storage.store import Store

__all__ = [
    "Engine",
    "client_order_id",
    "exit_reason",
    "new_cycle_id",
    "skip_reason",
    "skip_reason_in",
]

log = logging.getLogger(__name__)


def client_order_id(symbol: str, bar_time: datetime, action: str) -> str:
    """Derive the order id from symbol, bar and action, so a rerun can never order twice."""
    return f"{symbol.replace('/', '')}-{bar_time:%Y%m%dT%H%M}-{action.lower()}"


def new_cycle_id(symbol: str, now: datetime) -> str:
    """Name a cycle by its time and symbol (sortable, readable), made unique by a random tail."""
    return f"{now:%Y%m%dT%H%M%S}-{symbol.replace('/', '')}-{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(
        self,
        market: MarketData,
        broker: Broker,
        analyst: Analyst,
        store: Store,
        risk: RiskLimits | None = None,
        clock: Clock | None = None,
        alerts: AlertSink | None = None,
        failure_alert_after: int = 3,
        protection: Protection | None = None,
        limit_expiry_bars: int = 3,
        features: FeatureSource | None = None,
    ) -> None:
        """`protection` None: no stop rests at the venue (the bot's own stop, once a cycle).
        `features`: where a cycle's features come from (default: computed per cycle, live)."""
        self.market, self.broker, self.analyst, self.store = market, broker, analyst, store
        self.source = features or LiveFeatures(market, store)
        self.risk = risk or RiskLimits()
        self.clock = clock or SystemClock()
        self.executor = Executor(broker, store)
        self.alerts = alerts
        self.exits = Exits.on_venue(broker, store, self.executor, protection, alerts)
        self.protector = self.exits.protector
        self.limit_expiry_bars = limit_expiry_bars
        self.watch = CycleAlerts(store, alerts, failure_alert_after)
        self.last_context: MarketContext | None = None  # what the analyst saw last (shadows)

    def skip_reason(self, asset: AssetSettings, now: datetime) -> str | None:
        """Say why the asset should not run now (paused, not due), or None when it is due."""
        return skip_reason_in(self.store, asset, now)

    def run_cycle(
        self, symbol: str, *, force: bool = False, cycle_id: str | None = None
    ) -> CycleReport:
        """Run one cycle; never raises for market, analyst or broker trouble (it records it).

        A paused asset's cycle (forced, or due while it holds a position) enforces exits only.
        `cycle_id` lets a caller that named the cycle beforehand (the papermill tick) keep it.
        """
        now = self.clock.now()
        asset = self.store.get_asset(symbol)
        reason = None if force else self.skip_reason(asset, now)
        if reason:
            return CycleReport(
                cycle_id="-", symbol=symbol, status=CycleStatus.SKIPPED, reason=reason
            )
        cycle_id = cycle_id or new_cycle_id(symbol, now)
        self.last_context = None
        self.store.fail_running_cycles(symbol, now)
        self.store.start_cycle(
            cycle_id, symbol, now, mode=self.broker.mode, analyst=self.analyst.name
        )
        with log_context(cycle_id, symbol):
            report = self._guarded(cycle_id, asset, now)
            log.info("cycle %s", report.summary())
        self.store.mark_cycle(symbol, now)
        return report

    def _guarded(self, cycle_id: str, asset: AssetSettings, now: datetime) -> CycleReport:
        try:
            return self._run(cycle_id, asset, now)
        except StaleDataError as exc:  # nothing new to decide on: skipped, not failed
            self.store.finish_cycle(cycle_id, now, status="skipped", reason=str(exc))
            self.watch.stale(asset.symbol, str(exc), now, cycle_id)
            return CycleReport(cycle_id, asset.symbol, CycleStatus.SKIPPED, reason=str(exc))
        except BotlibError as exc:
            return self._fail(cycle_id, asset.symbol, now, str(exc), type(exc).__name__)
        except Exception as exc:  # a crash must still leave a consistent, explained record
            log.exception("cycle crashed")
            return self._fail(cycle_id, asset.symbol, now, f"{type(exc).__name__}: {exc}", "crash")

    def _fail(self, cycle_id: str, symbol: str, now: datetime, why: str, kind: str) -> CycleReport:
        self.store.finish_cycle(cycle_id, now, status="failed", reason=why, error=kind)
        self.watch.after_failure(symbol, now, cycle_id)
        return CycleReport(cycle_id, symbol, CycleStatus.FAILED, reason=why)

    def _run(self, cycle_id: str, asset: AssetSettings, now: datetime) -> CycleReport:
        bars = self.source.features(asset, now)
        bar_time = bars.index[-1].to_pydatetime()
        # a NaN/inf/zero price must fail the cycle before exits, sizing or the broker see it
        price = checked_price(asset.symbol, self.market.latest_price(asset.symbol, now))
        position = reconcile(
            self.store, self.broker, self.executor, asset, now, cycle_id, self.protector
        )
        exit_report = self._enforce_exits(cycle_id, asset, bars.iloc[-1], price, position, now)
        if exit_report is not None:
            return exit_report
        if asset.paused:
            note = "paused: no new decisions; stop-loss and take-profit still watched"
            return self._finish(cycle_id, asset.symbol, now, bar_time, _Outcome("PAUSED", note))
        smc = self.source.summary(bars)
        context = MarketContext(
            asset.symbol, now, bars, asset, self.broker.account(), position, price, smc
        )
        self.last_context = context
        called_at = datetime.now(UTC)  # the real wall clock, beside the (maybe simulated) `now`
        result = self._ask(context)
        self.watch.budget(result.call.error, now, cycle_id)
        decision_id = self._log_decision(cycle_id, context, result, called_at)
        failpoint("cycle.after_decision")
        return self._act(cycle_id, asset, context, result.decision, decision_id, bar_time)

    def _enforce_exits(
        self,
        cycle_id: str,
        asset: AssetSettings,
        bar: pd.Series,
        price: float,
        position: Position | None,
        now: datetime,
    ) -> CycleReport | None:
        """Sell at market when the target, or a stop the venue does not hold, was hit."""
        booked = self.store.get_position(asset.symbol)
        if position is None or booked is None:
            return None
        bar_time = bar.name.to_pydatetime()
        reached = exit_reason(booked, bar, bar_time, price)
        reason = self.exits.action(asset.symbol, reached, price)
        if reason is None:
            return None
        cid = client_order_id(asset.symbol, bar_time, "exit")
        note, orders = self.exits.close(cycle_id, None, asset.symbol, cid, reason, now)
        outcome = _Outcome(action="EXIT", note=note, orders=orders, exit_reason=reason)
        return self._finish(cycle_id, asset.symbol, now, bar_time, outcome)

    def _ask(self, context: MarketContext) -> AnalystResult:
        """Call the analyst; a failure or an unusable decision becomes a logged HOLD.

        A rejected decision keeps its call record, so its tokens and cost are still logged.
        """
        try:
            result = self.analyst.decide(context)
        except Exception as exc:
            log.warning("analyst failed: %s: %s", type(exc).__name__, exc)
            hold = Decision.hold(context.symbol, f"analyst failed: {type(exc).__name__}")
            error = f"{type(exc).__name__}: {exc}"
            return AnalystResult(hold, self.analyst.name, call=CallRecord(error=error))
        problem = decision_problem(result.decision, context)
        if problem is None:
            return result
        log.warning("decision rejected: %s", problem)
        return replace(
            result,
            decision=Decision.hold(context.symbol, f"rejected: {problem}"),
            call=replace(result.call, error=f"InvalidDecision: {problem}"),
        )

    def _log_decision(
        self, cycle_id: str, context: MarketContext, result: AnalystResult, called_at: datetime
    ) -> int:
        d = result.decision
        return self.store.log_decision(
            {
                "cycle_id": cycle_id,
                "symbol": context.symbol,
                "created_at": iso(context.now),
                "called_at": iso(called_at),
                "last_bar_time": iso(context.last_bar_time),
                "analyst": result.analyst,
                "model": result.model,
                "request": result.request,
                "action": d.action.value,
                "confidence": d.confidence,
                "position_size_pct": d.position_size_pct,
                "stop_loss": d.stop_loss,
                "take_profit": d.take_profit,
                "order_type": d.order_type,
                "limit_price": d.limit_price,
                "reasoning": d.reasoning,
            }
            | result.call.columns()
        )

    def _act(
        self,
        cycle_id: str,
        asset: AssetSettings,
        context: MarketContext,
        decision: Decision,
        decision_id: int,
        bar_time: datetime,
    ) -> CycleReport:
        status = trading_status(self.store, context.account.equity, context.now, self.risk)
        if status.halted:
            self.watch.halted(status, context.now, cycle_id)
        verdict = check(
            decision,
            asset=asset,
            account=context.account,
            position=context.position,
            price=context.price,
            client_order_id=client_order_id(asset.symbol, bar_time, decision.action.value),
            status=status,
            limits=self.risk,
        )
        outcome = _Outcome(
            action=decision.action.value,
            note=verdict.reason,
            decision_id=decision_id,
            fields={
                "risk_verdict": "approved" if verdict.approved else "denied",
                "risk_reason": verdict.reason,
                "decision_id": decision_id,
            },
        )
        order = verdict.order
        if order is not None and order.side == "buy":
            outcome.note, outcome.orders = self._enter(cycle_id, decision_id, verdict, context)
        elif order is not None and context.position is not None:
            outcome.note, outcome.orders = self.exits.close(
                cycle_id, decision_id, asset.symbol, order.client_order_id, "signal", context.now
            )
        else:
            self._follow(decision, context, cycle_id)
        return self._finish(cycle_id, asset.symbol, context.now, bar_time, outcome)

    def _enter(
        self, cycle_id: str, decision_id: int, verdict: RiskVerdict, context: MarketContext
    ) -> tuple[str, tuple[str, ...]]:
        """Send an entry (a limit one expires after `limit_expiry_bars`), then protect it."""
        now, symbol = context.now, context.symbol
        if self.store.resting_intents(symbol, "signal"):
            return "denied: a limit entry already rests at the venue (one entry per asset)", ()
        width = timedelta(minutes=TIMEFRAMES[context.asset.timeframe])
        expires = context.last_bar_time + width * (self.limit_expiry_bars + 1)
        note, orders = self.executor.open(cycle_id, decision_id, verdict, now, expires)
        if orders and self.protector is not None and self.broker.position(symbol) is not None:
            failpoint("entry.after_fill")
            self.protector.protect(symbol, now, cycle_id)
        return note, orders

    def _follow(self, decision: Decision, context: MarketContext, cycle_id: str) -> None:
        """A HOLD with a higher stop raises the position's stop (never lowers it) and moves the
        venue's stop with it; a SELL with no position cancels a resting limit entry."""
        symbol, booked = context.symbol, self.store.get_position(context.symbol)
        if decision.action is Action.SELL and booked is None:
            self.executor.release(symbol, context.now, "cancelled by a SELL decision")
            return
        stop = decision.stop_loss
        if booked is None or stop is None or decision.action is not Action.HOLD:
            return
        if not (float(booked["stop_loss"] or 0.0) < stop < context.price):
            return
        self.store.set_position(symbol, {"stop_loss": stop, "updated_at": iso(context.now)})
        if self.protector is not None:
            self.protector.protect(symbol, context.now, cycle_id)

    def _finish(
        self, cycle_id: str, symbol: str, now: datetime, bar_time: datetime, outcome: _Outcome
    ) -> CycleReport:
        failpoint("cycle.before_finish")
        account = self.broker.account()
        price = self.market.latest_price(symbol, now)
        with self.store.transaction():
            self.executor.snapshot(cycle_id, symbol, account, price, now)
            self.store.finish_cycle(
                cycle_id,
                now,
                status="ok",
                reason=outcome.note,
                bar_time=bar_time,
                action=outcome.action,
                exit_reason=outcome.exit_reason,
                equity=account.equity,
                **outcome.fields,
            )
        self._reflect(cycle_id, symbol, now)  # after the commit: a model call takes seconds
        return CycleReport(
            cycle_id,
            symbol,
            CycleStatus.OK,
            reason=outcome.note,
            bar_time=bar_time,
            action=outcome.action,
            exit_reason=outcome.exit_reason,
            orders=outcome.orders,
            equity=account.equity,
            decision_id=outcome.decision_id,
        )

    def _reflect(self, cycle_id: str, symbol: str, now: datetime) -> None:
        """Reflect on trades closed so far (outside a transaction: a model call takes seconds)."""
        try:
            reflect_pending(self.store, self.analyst, symbol, now, cycle_id)
        except Exception:  # reflections are advisory: never fail the cycle over one
            log.exception("reflections could not be written")


@dataclass
class _Outcome:
    """What a cycle decided and did, gathered for the cycle row and the report."""

    action: str
    note: str
    orders: tuple[str, ...] = ()
    exit_reason: str | None = None
    decision_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
