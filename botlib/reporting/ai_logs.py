"""Read and export the AI audit trail (`ai_decision_logs`): filter, totals, JSON and CSV.

Everything here only reads, so the explorer notebook and `botlib export-logs` can open the
database read-only. JSON exports decode the nested JSON columns (request, prompt, response,
raw response) into objects; CSV keeps them as the JSON strings the database holds, a column
per field. Both read back (`read_json`, `read_csv`) into exactly the rows they came from.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import pandas as pd

from botlib.clock import day_start, iso
from botlib.storage.store import Store

__all__ = [
    "FIELDS",
    "JSON_FIELDS",
    "LogFilter",
    "query_logs",
    "logged_decision",
    "totals",
    "analysts_and_models",
    "spend_since",
    "spend_today",
    "to_json",
    "to_csv",
    "read_json",
    "read_csv",
    "decoded",
    "parse_since",
]

# Export columns, in order: one per `ai_decision_logs` column.
FIELDS: tuple[str, ...] = (
    "id", "cycle_id", "symbol", "created_at", "called_at", "last_bar_time", "analyst", "model",
    "action", "confidence", "position_size_pct", "stop_loss", "take_profit", "reasoning",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "cost_usd",
    "latency_ms", "error", "output_mode", "cache", "request", "prompt", "response",
    "raw_response",
)  # fmt: skip
JSON_FIELDS: tuple[str, ...] = ("request", "prompt", "response", "raw_response")
_INTS = {"id", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"}
_FLOATS = {"confidence", "position_size_pct", "stop_loss", "take_profit", "cost_usd", "latency_ms"}
Grouping = Literal["model", "symbol", "day", "analyst"]
_TOTALS = (
    "calls", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
    "cost_usd", "latency_p50_ms", "latency_p95_ms", "latency_max_ms",
)  # fmt: skip


@dataclass(frozen=True)
class LogFilter:
    """Which calls to read; every field left None matches everything."""

    symbol: str | None = None
    analyst: str | None = None
    model: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # case-insensitive substring of the reasoning
    errors_only: bool = False
    limit: int | None = 500

    def where(self) -> tuple[str, list[Any]]:
        """Return the SQL condition and its parameters (values are always bound, never pasted)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("symbol", "analyst", "model", "action"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value.upper() if column == "action" else value)
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(iso(self.since))
        if self.until is not None:
            clauses.append("created_at < ?")
            params.append(iso(self.until))
        if self.text:
            clauses.append("lower(reasoning) LIKE ? ESCAPE '\\'")
            params.append(f"%{_escape_like(self.text.lower())}%")
        if self.errors_only:
            clauses.append("error IS NOT NULL")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_logs(store: Store, filters: LogFilter | None = None) -> list[dict[str, Any]]:
    """Return matching calls, newest first, with the columns of `FIELDS`."""
    filters = filters or LogFilter()
    where, params = filters.where()
    limit = "" if filters.limit is None else f" LIMIT {int(filters.limit)}"
    sql = f"SELECT {', '.join(FIELDS)} FROM ai_decision_logs{where} ORDER BY id DESC{limit}"
    return store.rows(sql, params)


def totals(store: Store, by: Grouping = "model", filters: LogFilter | None = None) -> pd.DataFrame:
    """Sum tokens and cost and take latency percentiles per model, asset, analyst or UTC day."""
    rows = query_logs(store, _unlimited(filters))
    columns = [*_TOTALS]
    if not rows:
        return pd.DataFrame(columns=columns, index=pd.Index([], name=by))
    frame = pd.DataFrame(rows)
    key = frame["created_at"].str.slice(0, 10) if by == "day" else frame[by].fillna("-")
    groups = frame.groupby(key.rename(by), sort=True)
    tokens = ["prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens"]
    result = groups[tokens].sum(min_count=1).astype("Int64")
    result.insert(0, "errors", groups["error"].count())
    result.insert(0, "calls", groups.size())
    result["cost_usd"] = groups["cost_usd"].sum(min_count=1)
    latency = groups["latency_ms"]
    result["latency_p50_ms"] = latency.quantile(0.5)
    result["latency_p95_ms"] = latency.quantile(0.95)
    result["latency_max_ms"] = latency.max()
    return result[columns]


def _unlimited(filters: LogFilter | None) -> LogFilter:
    base = filters or LogFilter()
    return LogFilter(**{**base.__dict__, "limit": None})


def analysts_and_models(store: Store) -> list[dict[str, Any]]:
    """Return the distinct (analyst, model) pairs that made calls, for the explorer's filter."""
    return store.rows(
        "SELECT DISTINCT analyst, model FROM ai_decision_logs ORDER BY analyst, model"
    )


def logged_decision(store: Store, decision_id: int) -> dict[str, Any] | None:
    """One decision log row, as stored (its prompt and request are JSON text)."""
    found = store.rows("SELECT * FROM ai_decision_logs WHERE id = ?", [decision_id])
    return found[0] if found else None


def spend_since(store: Store, since: datetime) -> float:
    """Return the USD spent on LLM calls (decisions and reflections) since `since`."""
    return store.llm_spend_since(since)


def spend_today(store: Store, now: datetime) -> float:
    """Return the USD spent since midnight UTC of `now`'s day (the budget's day)."""
    return spend_since(store, day_start(now))


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """Return the row with its JSON columns parsed (text that is not JSON stays text)."""
    out = dict(row)
    for name in JSON_FIELDS:
        value = out.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # text that is not JSON stays text
                out[name] = json.loads(value)
    return out


def to_json(rows: Iterable[dict[str, Any]]) -> str:
    """Export rows as a JSON array, nested JSON columns as objects."""
    return json.dumps([decoded(r) for r in rows], indent=1, ensure_ascii=False)


def read_json(text: str) -> list[dict[str, Any]]:
    """Read a `to_json` export back into rows as `decoded` returns them."""
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("an AI-log JSON export is an array of objects")
    return [{name: row.get(name) for name in FIELDS} for row in rows]


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """Export rows as CSV, a column per field; nested JSON stays a JSON string, NULL is empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv(text: str) -> list[dict[str, Any]]:
    """Read a `to_csv` export back into database rows (numbers typed, empty cells None)."""
    return [{name: _typed(name, row.get(name, "")) for name in FIELDS}
            for row in csv.DictReader(io.StringIO(text))]  # fmt: skip


def _typed(name: str, cell: str) -> Any:
    if cell == "":
        return None
    if name in _INTS:
        return int(cell)
    if name in _FLOATS:
        return float(cell)
    return cell


def parse_since(text: str) -> datetime:
    """Parse `2026-11-20` (midnight UTC) or an ISO-8601 time with a zone, for `--since`."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a date or time: {text!r} (use 2026-11-20 or 2026-11-20T12:00Z)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"give a timezone: {text!r} (e.g. 2026-11-20T12:00Z)")
    return when.astimezone(UTC)
