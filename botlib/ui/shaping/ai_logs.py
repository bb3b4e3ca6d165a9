"""Turn AI-log rows into the texts, arrays and HTML the AI-log explorer shows (pure, no widgets).

Kept apart from the widgets so tests can check every number without a browser. Everything that
came from the database is HTML-escaped here: reasoning, prompts and responses are LLM output or
market data, i.e. untrusted text, and the widgets render HTML.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from botlib.reporting.ai_logs import decoded
from botlib.ui.shaping.text import NONE, money, percent

__all__ = [
    "REASONING_CHARS", "TABLE_COLUMNS", "LogSummary", "Series", "Histogram", "summarize",
    "summary_html", "table_html", "token_series", "cost_series", "latency_histogram",
    "export_link", "call_label", "detail_html", "truncate", "tokens", "milliseconds",
    "utc_seconds",
]  # fmt: skip

REASONING_CHARS = 200  # the table shows this much reasoning; the detail view shows all of it
TABLE_COLUMNS: tuple[str, ...] = (
    "id", "time", "asset", "analyst / model", "action", "confidence", "tokens", "cost",
    "latency", "error", "reasoning",
)  # fmt: skip
_NO_TIMES = np.array([], dtype="datetime64[ms]")
_NO_VALUES = np.array([], dtype=float)


# formatting ------------------------------------------------------------------------------
def truncate(text: str | None, limit: int = REASONING_CHARS) -> str:
    """Shorten text to `limit` characters with an ellipsis, so one row stays one row.

    >>> truncate("abcdef", 4), truncate(None)
    ('abc…', '')
    """
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tokens(value: float | None) -> str:
    """Format a token count with thousands separators.

    >>> tokens(12345), tokens(None)
    ('12,345', '—')
    """
    return NONE if value is None or pd.isna(value) else f"{int(value):,}"


def milliseconds(value: float | None) -> str:
    """Format a latency: whole ms from 100 ms up, three significant digits below.

    >>> milliseconds(1234.5), milliseconds(0.16544), milliseconds(None)
    ('1,234 ms', '0.165 ms', '—')
    """
    if value is None or pd.isna(value):
        return NONE
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"


def utc_seconds(value: str | None) -> str:
    """Format a stored ISO time as `YYYY-MM-DD HH:MM:SS` UTC (calls are seconds apart).

    >>> utc_seconds("2026-11-20T12:00:05+00:00"), utc_seconds(None)
    ('2026-11-20 12:00:05', '—')
    """
    if not value:
        return NONE
    return f"{pd.Timestamp(value).tz_convert('UTC'):%Y-%m-%d %H:%M:%S}"


def _esc(value: Any) -> str:
    return NONE if value is None or value == "" else html.escape(str(value))


# summary ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogSummary:
    """Totals of a selection: calls, tokens, priced cost, latency percentiles."""

    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    unpriced: int  # model calls with tokens but no cost (a model missing from the price table)
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def _column(rows: Sequence[dict[str, Any]], name: str) -> np.ndarray:
    """Return a column as floats, NULL as NaN."""
    return np.array([np.nan if r.get(name) is None else r[name] for r in rows], dtype=float)


def _percentile(values: np.ndarray, q: float) -> float | None:
    known = values[~np.isnan(values)]
    return float(np.percentile(known, q)) if len(known) else None


def summarize(rows: Sequence[dict[str, Any]]) -> LogSummary:
    """Sum a selection; NULL tokens count as none.

    A call with tokens but no cost is "unpriced" (its model has no price); one without tokens
    (the offline rules analyst, a call that failed before answering) cost nothing we know of.
    """
    cost = _column(rows, "cost_usd")
    latency = _column(rows, "latency_ms")

    def total(name: str) -> int:
        return int(np.nansum(_column(rows, name))) if rows else 0

    return LogSummary(
        calls=len(rows),
        errors=sum(1 for r in rows if r.get("error")),
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        total_tokens=total("total_tokens"),
        cost_usd=float(np.nansum(cost)) if rows else 0.0,
        unpriced=int((np.isnan(cost) & ~np.isnan(_column(rows, "prompt_tokens"))).sum()),
        latency_p50_ms=_percentile(latency, 50),
        latency_p95_ms=_percentile(latency, 95),
    )


def summary_html(summary: LogSummary) -> str:
    """Render the summary line (numbers only, nothing from the database needs escaping)."""
    s = summary
    unpriced = f" + {s.unpriced:,} unpriced" if s.unpriced else ""
    parts = [
        f"<b>{s.calls:,}</b> calls",
        f"<b>{s.errors:,}</b> errors",
        f"<b>{s.total_tokens:,}</b> tokens"
        f" (prompt {s.prompt_tokens:,} · completion {s.completion_tokens:,})",
        f"cost <b>{money(s.cost_usd)}</b>{unpriced}",
        f"latency p50 <b>{milliseconds(s.latency_p50_ms)}</b>"
        f" · p95 <b>{milliseconds(s.latency_p95_ms)}</b>",
    ]
    return " · ".join(parts)


# table -----------------------------------------------------------------------------------
def _tokens_cell(row: dict[str, Any]) -> str:
    prompt, completion = row.get("prompt_tokens"), row.get("completion_tokens")
    if prompt is None and completion is None:
        return tokens(row.get("total_tokens"))
    return f"{tokens(prompt)} / {tokens(completion)}"


def _cost_cell(row: dict[str, Any]) -> str:
    cost = row.get("cost_usd")
    if cost is None:
        return "—" if row.get("prompt_tokens") is None else "unpriced"
    return money(cost)


def _row_cells(row: dict[str, Any]) -> list[str]:
    action = str(row.get("action") or "")
    return [
        str(int(row["id"])),
        utc_seconds(row.get("created_at")),
        _esc(row.get("symbol")),
        f"{_esc(row.get('analyst'))} / {_esc(row.get('model'))}",
        f'<span class="botlib-action-{html.escape(action.lower())}">{_esc(action)}</span>',
        percent(row.get("confidence"), 0),
        _tokens_cell(row),
        _cost_cell(row),
        milliseconds(row.get("latency_ms")),
        html.escape(truncate(row.get("error"), 120)) if row.get("error") else "",
        html.escape(truncate(row.get("reasoning"))),
    ]


def table_html(rows: Sequence[dict[str, Any]]) -> str:
    """Render the calls as an HTML table, a `data-id` per row; an empty selection says so."""
    if not rows:
        return '<p class="botlib-ai-nodata">No AI calls match these filters.</p>'
    head = "".join(f"<th>{name}</th>" for name in TABLE_COLUMNS)
    body = []
    for row in rows:
        error = ' class="botlib-ai-error"' if row.get("error") else ""
        cells = "".join(f"<td>{cell}</td>" for cell in _row_cells(row))
        body.append(f'<tr data-id="{int(row["id"])}"{error}>{cells}</tr>')
    return (
        f'<table class="botlib-ai-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# chart arrays ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """x (datetime64[ms], naive UTC, what bqplot expects) and y, oldest first, no NaN."""

    x: np.ndarray
    y: np.ndarray

    @property
    def empty(self) -> bool:
        return len(self.x) == 0


def _times(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    stamps = pd.to_datetime([r["created_at"] for r in rows], utc=True, format="ISO8601")
    return pd.DatetimeIndex(stamps).tz_convert(None).to_numpy().astype("datetime64[ms]")


def _series(rows: Sequence[dict[str, Any]], name: str) -> Series:
    """Return one column oldest first, dropping NULLs (a NaN in a bqplot line breaks its SVG)."""
    if not rows:
        return Series(_NO_TIMES, _NO_VALUES)
    x, y = _times(rows), _column(rows, name)
    order = np.lexsort((np.array([r.get("id") or 0 for r in rows]), x))
    x, y = x[order], y[order]
    keep = ~np.isnan(y) & ~np.isnat(x)
    return Series(x[keep], y[keep])


def token_series(rows: Sequence[dict[str, Any]]) -> dict[str, Series]:
    """Return prompt and completion tokens per call over time (calls without tokens left out)."""
    return {name: _series(rows, f"{name}_tokens") for name in ("prompt", "completion")}


def cost_series(rows: Sequence[dict[str, Any]]) -> Series:
    """Return the running USD cost of the selection's priced calls, oldest first."""
    priced = _series(rows, "cost_usd")
    return Series(priced.x, np.cumsum(priced.y))


@dataclass(frozen=True)
class Histogram:
    """Latency histogram: bin edges (ms) and the number of calls in each bin."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        """Return each bin's middle, where its bar is drawn."""
        return (self.edges[:-1] + self.edges[1:]) / 2


def latency_histogram(rows: Sequence[dict[str, Any]], bins: int = 20) -> Histogram:
    """Bin the known latencies; an empty selection has no bins."""
    latency = _column(rows, "latency_ms")
    known = latency[~np.isnan(latency)]
    if not len(known):
        return Histogram(_NO_VALUES, np.array([], dtype=int))
    counts, edges = np.histogram(known, bins=bins)
    return Histogram(edges, counts)


# export and detail -----------------------------------------------------------------------
def export_link(text: str, filename: str, mime: str, label: str) -> str:
    """Build a link that downloads `text` from a base64 data URL (nothing saved on the server)."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (
        f'<a class="botlib-ai-download" download="{html.escape(filename)}"'
        f' href="data:{mime};charset=utf-8;base64,{payload}">{html.escape(label)}</a>'
    )


def call_label(row: dict[str, Any]) -> str:
    """Label a call in the detail picker: id, time, asset, action (plain text, not HTML)."""
    return (
        f"#{row['id']} · {utc_seconds(row.get('created_at'))} · {row.get('symbol') or NONE}"
        f" · {row.get('action') or NONE}{' · error' if row.get('error') else ''}"
    )


_DETAIL_FIELDS = (
    "id", "cycle_id", "symbol", "analyst", "model", "action", "confidence", "error",
    "last_bar_time", "called_at", "created_at", "output_mode", "cache", "latency_ms",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "reasoning",
)  # fmt: skip
_DETAIL_BLOCKS = (
    ("prompt", "Prompt messages"),
    ("response", "Response"),
    ("raw_response", "Raw SDK response"),
    ("request", "Request (market summary)"),
)


def _pretty(value: Any) -> str:
    """Pretty-print parsed JSON; text stays text."""
    if value is None:
        return NONE
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _block(key: str, title: str, value: Any) -> str:
    """Render one JSON column; chat messages get a heading per role."""
    if _is_messages(value):
        body = "".join(
            f"<h5>{_esc(m.get('role'))}</h5><pre>{html.escape(_pretty(m.get('content')))}</pre>"
            for m in value
        )
    else:
        body = f"<pre>{html.escape(_pretty(value))}</pre>"
    return f'<div class="botlib-ai-block botlib-ai-{key}"><h4>{title}</h4>{body}</div>'


def detail_html(row: dict[str, Any] | None) -> str:
    """Render one call in full: its fields, then prompt, response, raw response and request."""
    if row is None:
        return '<p class="botlib-ai-nodata">Pick a call to see its prompt and response.</p>'
    full = decoded(row)
    fields = "".join(
        f"<tr><th>{name}</th><td>{_esc(full.get(name))}</td></tr>" for name in _DETAIL_FIELDS
    )
    blocks = "".join(_block(key, title, full.get(key)) for key, title in _DETAIL_BLOCKS)
    return f'<table class="botlib-ai-fields">{fields}</table>{blocks}'
