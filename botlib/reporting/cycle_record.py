"""One cycle's human-readable record, read back from the store: what the analyst saw and did.

The trading-cycle notebook shows it after each run, so the archived notebook explains its cycle
without a database at hand: the last bars, the indicator values and SMC summary the analyst
was given, the prompt, the decision, the risk verdict and the fills. Everything comes from the
rows the engine wrote (nothing is recomputed), so the record is what actually happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from botlib.models import CycleReport
from botlib.storage.store import Store

__all__ = [
    "CycleRecord",
    "cycle_record",
    "show_record",
    "show_records",
    "reports_table",
    "RECORD_BARS",
]

RECORD_BARS = 10  # the last bars shown (the analyst saw more; the prompt states the last 30)
_DECISION = ("action", "confidence", "position_size_pct", "stop_loss", "take_profit")
_ORDER_COLUMNS = ["side", "reason", "qty", "price", "notional", "fee", "realized_pnl", "status",
                  "client_order_id"]  # fmt: skip


@dataclass(frozen=True)
class CycleRecord:
    """A cycle's record: small frames and texts, each empty when the cycle never got there."""

    cycle: dict[str, Any]  # the `cycles` row
    bars: pd.DataFrame  # the last bars up to the cycle's bar (OHLCV)
    indicators: pd.DataFrame  # indicator -> value, as the analyst was given them
    smc: pd.DataFrame  # SMC feature -> value, as the analyst was given them
    prompt: str  # the messages sent to the model, or the rules' checks
    decision: pd.DataFrame  # action, confidence, size, stop-loss, take-profit, analyst, model
    reasoning: str
    risk: str  # the risk engine's verdict and reason
    orders: pd.DataFrame  # this cycle's fills

    @property
    def title(self) -> str:
        c = self.cycle
        return f"{c['symbol']} {c['status']} at {c['started_at']} (cycle {c['id']})"


def cycle_record(store: Store, cycle_id: str, bars: int = RECORD_BARS) -> CycleRecord:
    """Read a cycle's record from `store`; raise KeyError for an unknown cycle id."""
    found = store.rows("SELECT * FROM cycles WHERE id = ?", [cycle_id])
    if not found:
        raise KeyError(f"no cycle {cycle_id!r}")
    cycle = found[0]
    logged = store.rows(
        "SELECT * FROM ai_decision_logs WHERE cycle_id = ? ORDER BY id DESC LIMIT 1", [cycle_id]
    )
    decision = logged[0] if logged else {}
    request = _json(decision.get("request")) or {}
    return CycleRecord(
        cycle=cycle,
        bars=_bars(store, cycle, request, bars),
        indicators=_table(request.get("indicators") or {}, "indicator"),
        smc=_table(request.get("smc") or {}, "feature"),
        prompt=_prompt_text(_json(decision.get("prompt"))),
        decision=_decision(decision),
        reasoning=decision.get("reasoning") or "",
        risk=_risk(cycle),
        orders=_orders(store, cycle_id),
    )


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _bars(store: Store, cycle: dict[str, Any], request: dict[str, Any], n: int) -> pd.DataFrame:
    columns = ["ts", "open", "high", "low", "close", "volume"]
    timeframe = request.get("timeframe") or _timeframe(store, cycle["symbol"])
    if cycle["bar_time"] is None or timeframe is None:
        return pd.DataFrame(columns=columns).set_index("ts")
    rows = store.rows(
        "SELECT ts, open, high, low, close, volume FROM market_data"
        " WHERE symbol = ? AND timeframe = ? AND ts <= ? ORDER BY ts DESC LIMIT ?",
        [cycle["symbol"], timeframe, cycle["bar_time"], n],
    )
    return pd.DataFrame(rows[::-1], columns=columns).set_index("ts")


def _timeframe(store: Store, symbol: str) -> str | None:
    found = store.rows("SELECT timeframe FROM trading_assets WHERE symbol = ?", [symbol])
    return found[0]["timeframe"] if found else None


def _text(value: Any) -> str:
    """Render a (nested) value on one line: numbers in 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _table(values: dict[str, Any], name: str) -> pd.DataFrame:
    rows = [{name: k, "value": _text(v)} for k, v in values.items()]
    return pd.DataFrame(rows, columns=[name, "value"]).set_index(name)


def _prompt_text(prompt: Any) -> str:
    """Render the prompt: chat messages as `role:` blocks, the rules' checks as lists."""
    if prompt is None:
        return ""
    if isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        return "\n\n".join(f"[{m.get('role', '?')}]\n{m.get('content', '')}" for m in prompt)
    if isinstance(prompt, dict):
        return "\n".join(_check_lines(prompt.items()))
    return str(prompt)


def _check_lines(items: Iterable[tuple[str, Any]]) -> Iterable[str]:
    for name, value in items:
        yield f"{name}:"
        values = value if isinstance(value, list) else [value]
        yield from (f"  - {_text(v)}" for v in values) if values else ["  (none)"]


def _decision(logged: dict[str, Any]) -> pd.DataFrame:
    if not logged:
        return pd.DataFrame(columns=["value"])
    fields = {k: _text(logged.get(k)) for k in _DECISION}
    fields |= {"analyst": logged.get("analyst") or "", "model": logged.get("model") or ""}
    if logged.get("error"):
        fields["error"] = logged["error"]
    return pd.DataFrame({"value": fields})


def _risk(cycle: dict[str, Any]) -> str:
    verdict, reason = cycle.get("risk_verdict"), cycle.get("risk_reason") or ""
    if not verdict:
        return ""
    return reason if reason.startswith(verdict) else f"{verdict}: {reason}".rstrip(": ")


def _orders(store: Store, cycle_id: str) -> pd.DataFrame:
    rows = store.rows(
        f"SELECT {', '.join(_ORDER_COLUMNS)} FROM trades WHERE cycle_id = ? ORDER BY id",
        [cycle_id],
    )
    return pd.DataFrame(rows, columns=_ORDER_COLUMNS)


def show_record(record: CycleRecord) -> None:
    """Display a record in a notebook: a heading per part, frames as tables."""
    from IPython.display import Markdown, display

    c = record.cycle
    outcome = f"**{c['status']}**" + (f" — {c['action']}" if c["action"] else "")
    lines = [f"## {record.title}", "", f"{outcome}: {c['reason'] or c['error'] or ''}"]
    if c["equity"] is not None:
        lines.append(f"\nequity after the cycle: {c['equity']:,.2f} USD")
    display(Markdown("\n".join(lines)))
    parts: list[tuple[str, Any]] = [
        ("Last bars", record.bars),
        ("Indicators the analyst saw", record.indicators),
        ("SMC summary the analyst saw", record.smc),
        ("Prompt", _fenced(record.prompt)),
        ("Decision", record.decision),
        ("Reasoning", record.reasoning),
        ("Risk verdict", record.risk),
        ("Orders and fills", record.orders),
    ]
    for heading, part in parts:
        empty = part.empty if isinstance(part, pd.DataFrame) else not part
        display(Markdown(f"### {heading}" + ("\n\n(none in this cycle)" if empty else "")))
        if not empty:
            with pd.option_context("display.max_colwidth", None):  # SMC zones are long
                display(part if isinstance(part, pd.DataFrame) else Markdown(part))


def _fenced(text: str) -> str:
    return f"```text\n{text}\n```" if text else ""


def show_records(db: str, reports: list[CycleReport]) -> None:
    """Display the record of every cycle in `reports` that ran (skipped ones say why)."""
    from IPython.display import Markdown, display

    with Store(db, read_only=True) as store:
        for report in reports:
            if report.cycle_id == "-":
                display(Markdown(f"## {report.symbol} skipped: {report.reason}"))
            else:
                show_record(cycle_record(store, report.cycle_id))


def reports_table(reports: list[CycleReport]) -> Any:
    """Return the reports as a DataFrame, one row per cycle, for notebooks."""
    columns = ["symbol", "status", "action", "orders", "equity", "reason", "cycle_id"]
    rows = [
        {
            "symbol": r.symbol,
            "status": r.status.value,
            "action": r.action or "",
            "orders": ",".join(r.orders),
            "equity": None if r.equity is None else round(r.equity, 2),
            "reason": r.reason,
            "cycle_id": r.cycle_id,
        }
        for r in reports
    ]
    return pd.DataFrame(rows, columns=columns)
