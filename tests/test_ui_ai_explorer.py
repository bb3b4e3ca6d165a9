"""The AI-log explorer: pure shaping functions, then the widgets on a real (copied) database."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from botlib.reporting.ai_logs import LogFilter, query_logs, read_csv, read_json, to_csv, to_json
from botlib.storage.store import Store
from botlib.ui.ai_explorer import AiLogExplorer
from botlib.ui.shaping.ai_logs import (
    TABLE_COLUMNS,
    call_label,
    cost_series,
    detail_html,
    export_link,
    latency_histogram,
    milliseconds,
    summarize,
    summary_html,
    table_html,
    token_series,
    tokens,
    truncate,
)
from tests.ui_helpers import copy_db

SCRIPT = "<script>alert(1)</script>"
MESSAGES = [
    {"role": "system", "content": "You are a careful crypto analyst. Answer in JSON."},
    {"role": "user", "content": "BTC/USD 15Min: close 98,000 <below> SMA50"},
]


def _openai(minute: int, **fields: Any) -> dict[str, Any]:
    """An OpenAI-analyst row as the engine would log it (after the demo's last cycle)."""
    row = {
        "symbol": "BTC/USD",
        "created_at": f"2026-11-20T12:{minute:02d}:00+00:00",
        "called_at": f"2026-11-20T12:{minute:02d}:00.5+00:00",
        "last_bar_time": "2026-11-20T11:45:00+00:00",
        "analyst": "openai",
        "model": "gpt-4o-mini",
        "action": "BUY",
        "confidence": 0.7,
        "position_size_pct": 0.1,
        "reasoning": "Bullish BOS above the 15m order block",
        "prompt_tokens": 1000 + minute,
        "completion_tokens": 100 + minute,
        "total_tokens": 1100 + 2 * minute,
        "cached_tokens": 0,
        "cost_usd": 0.0002 * (minute + 1),
        "latency_ms": 800.0 + 100 * minute,
        "output_mode": "json_schema",
        "cache": "miss",
        "request": {"symbol": "BTC/USD", "close": 98000.0},
        "prompt": MESSAGES,
        "response": {"action": "BUY", "confidence": 0.7},
        "raw_response": {"id": f"chatcmpl-{minute}", "object": "chat.completion"},
    }
    return row | fields


EXTRA = [
    _openai(1),
    _openai(2, symbol="SOL/USD", action="SELL", reasoning=f"Bearish CHoCH {SCRIPT}"),
    _openai(3, cost_usd=None, reasoning="unknown price for this model"),
    _openai(
        4,
        action=None,
        confidence=None,
        reasoning=None,
        error="APITimeoutError: Request timed out.",
        prompt_tokens=None,
        completion_tokens=None,
        total_tokens=None,
        cost_usd=None,
        latency_ms=30000.0,
        response=None,
        raw_response=None,
    ),
]


@pytest.fixture
def ai_db(tmp_path: Path, demo_db: Path) -> Path:
    """The demo DB (rules analyst) plus four OpenAI-like calls: priced, SELL, unpriced, error."""
    path = copy_db(demo_db, tmp_path / "ai.db")
    with Store(path) as store:
        for row in EXTRA:
            store.log_decision(row)
    return path


@pytest.fixture
def explorer(ai_db: Path) -> AiLogExplorer:
    return AiLogExplorer.from_path(ai_db)


def db_rows(db: Path, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with Store(db, read_only=True) as store:
        return store.rows(f"SELECT * FROM ai_decision_logs {where} ORDER BY id DESC", params)


class _Table(HTMLParser):
    """Collect the text of every body cell of the explorer's table, one dict per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table(explorer: AiLogExplorer) -> list[dict[str, str]]:
    parser = _Table()
    parser.feed(explorer.table.value)
    return [dict(zip(TABLE_COLUMNS, cells, strict=True)) for cells in parser.rows]


def shown_ids(explorer: AiLogExplorer) -> list[int]:
    return [int(row["id"]) for row in table(explorer)]


def pick_source(explorer: AiLogExplorer, analyst: str) -> None:
    options = explorer.source.options
    explorer.source.value = next(v for _, v in options if isinstance(v, tuple) and v[0] == analyst)


# pure shaping ----------------------------------------------------------------------------
def test_formatters() -> None:
    assert truncate("x" * 300) == "x" * 199 + "…"
    assert truncate("short") == "short"
    assert tokens(1234567) == "1,234,567" and tokens(None) == "—"
    assert milliseconds(30000.0) == "30,000 ms" and milliseconds(12.345) == "12.3 ms"


def test_summarize_counts_null_cost_as_unpriced_and_null_tokens_as_none() -> None:
    rows = [
        {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost_usd": 0.5,
         "latency_ms": 100.0, "error": None},
        {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
         "cost_usd": None, "latency_ms": None, "error": "boom"},
        {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6, "cost_usd": 0.25,
         "latency_ms": 300.0, "error": None},
        {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8, "cost_usd": None,
         "latency_ms": None, "error": None},  # a model without a price
    ]  # fmt: skip
    s = summarize(rows)
    assert (s.calls, s.errors, s.prompt_tokens, s.completion_tokens, s.total_tokens) == (
        4, 1, 22, 4, 26,
    )  # fmt: skip
    assert s.cost_usd == pytest.approx(0.75) and s.unpriced == 1
    assert s.latency_p50_ms == pytest.approx(200.0)
    assert s.latency_p95_ms == pytest.approx(290.0)
    assert "+ 1 unpriced" in summary_html(s) and "$0.75" in summary_html(s)
    empty = summarize([])
    assert empty.calls == 0 and empty.latency_p50_ms is None and empty.cost_usd == 0
    assert "—" in summary_html(empty)


def test_nan_tokens_are_dropped_before_drawing() -> None:
    """Regression: a trailing NaN in a bqplot Lines mark made its SVG path invalid."""
    rows = [
        {"id": 2, "created_at": "2026-11-20T12:01:00+00:00", "prompt_tokens": None,
         "completion_tokens": None, "cost_usd": None},
        {"id": 1, "created_at": "2026-11-20T12:00:00+00:00", "prompt_tokens": 7,
         "completion_tokens": 3, "cost_usd": 0.1},
        {"id": 3, "created_at": "2026-11-20T12:02:00+00:00", "prompt_tokens": 9,
         "completion_tokens": 4, "cost_usd": 0.2},
    ]  # fmt: skip
    series = token_series(rows)
    assert series["prompt"].y.tolist() == [7, 9]
    assert series["prompt"].x.dtype == np.dtype("datetime64[ms]")
    assert (
        series["prompt"].x.tolist()
        == np.array(["2026-11-20T12:00", "2026-11-20T12:02"], dtype="datetime64[ms]").tolist()
    )
    assert cost_series(rows).y.tolist() == pytest.approx([0.1, 0.3])
    nulls = [{"id": 1, "created_at": "2026-11-20T12:00:00+00:00", "prompt_tokens": None}]
    assert token_series(nulls)["prompt"].empty and token_series([])["completion"].empty


def test_latency_histogram_bins_the_known_latencies() -> None:
    rows = [{"latency_ms": float(v)} for v in (1, 2, 2, 3, 9)] + [{"latency_ms": None}]
    hist = latency_histogram(rows, bins=4)
    assert hist.edges.tolist() == [1, 3, 5, 7, 9] and hist.counts.tolist() == [3, 1, 0, 1]
    assert hist.centres.tolist() == [2, 4, 6, 8]
    assert not len(latency_histogram([{"latency_ms": None}]).counts)


def test_table_html_escapes_and_truncates() -> None:
    row = {"id": 5, "created_at": "2026-11-20T12:00:00+00:00", "symbol": "BTC/USD",
           "analyst": "openai", "model": "<b>m</b>", "action": "BUY", "confidence": 0.5,
           "reasoning": SCRIPT + "x" * 400, "error": None}  # fmt: skip
    text = table_html([row])
    assert SCRIPT not in text and "<b>m" not in text
    assert html.escape(SCRIPT) in text and "&lt;b&gt;m&lt;/b&gt;" in text
    assert "x" * 400 not in text and "…" in text
    assert "No AI calls" in table_html([])


def test_export_link_decodes_to_the_text() -> None:
    link = export_link("a,b\n1,é\n", "ai_logs.csv", "text/csv", "CSV")
    payload = re.search(r'base64,([^"]+)"', link)
    assert payload is not None and 'download="ai_logs.csv"' in link
    assert base64.b64decode(payload.group(1)).decode() == "a,b\n1,é\n"


def test_detail_html_shows_messages_and_escapes_them() -> None:
    row = {"id": 1, "prompt": MESSAGES, "response": '{"action": "BUY"}', "raw_response": SCRIPT}
    text = detail_html(row)
    assert "<h5>system</h5>" in text and "careful crypto analyst" in text
    assert "&lt;below&gt;" in text and SCRIPT not in text and html.escape(SCRIPT) in text
    assert '"action": "BUY"' in html.unescape(text)
    assert "Pick a call" in detail_html(None)
    assert call_label({"id": 9, "created_at": None, "symbol": "X", "action": None}) == (
        "#9 · — · X · —"
    )


# the widgets -----------------------------------------------------------------------------
def test_shows_every_call_newest_first_with_the_db_values(
    explorer: AiLogExplorer, ai_db: Path
) -> None:
    rows = db_rows(ai_db)
    assert len(rows) <= 200 and explorer.status.value.startswith("read-only")
    assert shown_ids(explorer) == [r["id"] for r in rows]
    first = table(explorer)[0]  # the error row, logged last
    assert first["error"] == EXTRA[3]["error"] and first["tokens"] == "—"
    assert first["cost"] == "—" and first["latency"] == "30,000 ms"  # failed before answering
    priced = next(r for r in table(explorer) if r["reasoning"].startswith("Bullish BOS"))
    assert priced["analyst / model"] == "openai / gpt-4o-mini"
    assert priced["tokens"] == "1,001 / 101" and priced["action"] == "BUY"
    assert priced["asset"] == "BTC/USD" and priced["time"] == "2026-11-20 12:01:00"
    assert priced["confidence"] == "70 %" and priced["cost"] == "$0.0004"


def test_filter_choices_come_from_the_database(explorer: AiLogExplorer) -> None:
    assert [label for label, _ in explorer.asset.options] == ["All", "BTC/USD", "SOL/USD"]
    assert [v for _, v in explorer.source.options] == [
        "All", ("openai", "gpt-4o-mini"), ("rules", "rules-v1"),
    ]  # fmt: skip
    assert list(explorer.action.options) == ["All", "BUY", "SELL", "HOLD"]
    assert (explorer.limit.min, explorer.limit.max, explorer.limit.value) == (1, 5000, 200)


def test_each_filter_requeries(explorer: AiLogExplorer, ai_db: Path) -> None:
    pick_source(explorer, "openai")
    assert shown_ids(explorer) == [r["id"] for r in db_rows(ai_db, "WHERE analyst = 'openai'")]
    explorer.asset.value = "SOL/USD"
    assert [r["reasoning"] for r in table(explorer)] == [f"Bearish CHoCH {SCRIPT}"]
    explorer.asset.value = "All"
    explorer.action.value = "BUY"
    where = "WHERE analyst = 'openai' AND action = 'BUY'"
    assert shown_ids(explorer) == [r["id"] for r in db_rows(ai_db, where)]
    explorer.action.value = "All"
    explorer.errors_only.value = True
    assert [r["error"] for r in table(explorer)] == [EXTRA[3]["error"]]
    explorer.errors_only.value = False
    explorer.source.value = "All"
    explorer.limit.value = 3
    assert shown_ids(explorer) == [r["id"] for r in db_rows(ai_db)][:3]
    assert len(explorer.calls.options) == 3


def test_text_search_is_a_case_insensitive_substring(explorer: AiLogExplorer) -> None:
    explorer.text.value = "choch <SCRIPT>"
    assert [r["asset"] for r in table(explorer)] == ["SOL/USD"]
    explorer.text.value = "no such words"
    assert explorer.rows == [] and "No AI calls" in explorer.table.value


def test_summary_equals_sums_over_the_db(explorer: AiLogExplorer, ai_db: Path) -> None:
    for analyst in (None, "openai"):
        if analyst:
            pick_source(explorer, analyst)
        where = "WHERE analyst = ?" if analyst else "WHERE ?1 IS NULL"
        with closing(sqlite3.connect(ai_db)) as conn:
            calls, prompt, completion, total, cost, unpriced = conn.execute(
                "SELECT count(*), coalesce(sum(prompt_tokens), 0),"
                " coalesce(sum(completion_tokens), 0), coalesce(sum(total_tokens), 0),"
                " coalesce(sum(cost_usd), 0),"
                " sum(cost_usd IS NULL AND prompt_tokens IS NOT NULL)"
                f" FROM ai_decision_logs {where}",
                (analyst,),
            ).fetchone()
            sql = f"SELECT latency_ms FROM ai_decision_logs {where}"
            latency = [r[0] for r in conn.execute(sql, (analyst,))]
        s = summarize(explorer.rows)
        assert (s.calls, s.prompt_tokens, s.completion_tokens, s.total_tokens, s.unpriced) == (
            calls, prompt, completion, total, unpriced,
        )  # fmt: skip
        assert s.cost_usd == pytest.approx(cost)
        assert s.latency_p95_ms == pytest.approx(np.percentile(latency, 95))
        assert f"<b>{calls:,}</b> calls" in explorer.summary.value
        assert f"<b>{total:,}</b> tokens" in explorer.summary.value
        assert f"+ {unpriced:,} unpriced" in explorer.summary.value


def test_charts_hold_the_db_values(explorer: AiLogExplorer, ai_db: Path) -> None:
    pick_source(explorer, "openai")
    oldest_first = db_rows(ai_db, "WHERE analyst = 'openai'")[::-1]
    with_tokens = [r for r in oldest_first if r["prompt_tokens"] is not None]
    times = np.array([r["created_at"][:19] for r in with_tokens], dtype="datetime64[ms]")
    charts = explorer.charts
    assert np.array_equal(charts.tokens["prompt"].x, times)
    assert charts.tokens["prompt"].y.tolist() == [r["prompt_tokens"] for r in with_tokens]
    assert charts.tokens["completion"].y.tolist() == [r["completion_tokens"] for r in with_tokens]
    priced = [r["cost_usd"] for r in oldest_first if r["cost_usd"] is not None]
    assert charts.cost.y.tolist() == pytest.approx(np.cumsum(priced).tolist())
    latencies = [r["latency_ms"] for r in oldest_first]
    counts, edges = np.histogram(latencies, bins=20)
    assert charts.latency.y.tolist() == counts.tolist()
    assert charts.latency.x.tolist() == pytest.approx(((edges[:-1] + edges[1:]) / 2).tolist())
    assert not any(np.isnan(mark.y).any() for mark in (*charts.tokens.values(), charts.cost))
    assert all(note.value == "" for note in charts.notes.values())


def test_rules_calls_and_empty_selections_draw_nothing(explorer: AiLogExplorer) -> None:
    pick_source(explorer, "rules")  # the offline analyst has no tokens and no cost
    charts = explorer.charts
    assert len(charts.tokens["prompt"].x) == 0 and len(charts.cost.y) == 0
    assert "no data" in charts.notes["tokens"].value and "no data" in charts.notes["cost"].value
    assert charts.latency.y.sum() == len(explorer.rows)
    explorer.text.value = "nothing matches this"
    assert len(charts.latency.y) == 0 and "no data" in charts.notes["latency"].value
    assert explorer.calls.value is None and "Pick a call" in explorer.detail.value


def _download(explorer: AiLogExplorer, name: str) -> str:
    explorer.export.click()
    found = re.search(rf'download="{name}" href="data:[^;]+;charset=utf-8;base64,([^"]+)"',
                      explorer.exports.value)  # fmt: skip
    assert found is not None, explorer.exports.value[:300]
    return base64.b64decode(found.group(1)).decode("utf-8")


def test_exports_hold_exactly_the_current_selection(explorer: AiLogExplorer, ai_db: Path) -> None:
    pick_source(explorer, "openai")
    explorer.limit.value = 3
    assert "base64" not in explorer.exports.value  # built only when asked for
    with Store(ai_db, read_only=True) as store:
        selection = query_logs(store, LogFilter(analyst="openai", model="gpt-4o-mini", limit=3))
    assert len(selection) == 3
    assert _download(explorer, "ai_logs.json") == to_json(selection)
    assert _download(explorer, "ai_logs.csv") == to_csv(selection)
    assert read_csv(_download(explorer, "ai_logs.csv")) == selection
    assert read_json(_download(explorer, "ai_logs.json"))[0]["prompt"] == MESSAGES


def test_detail_shows_the_chosen_call(explorer: AiLogExplorer, ai_db: Path) -> None:
    pick_source(explorer, "openai")
    error_id = db_rows(ai_db, "WHERE error IS NOT NULL")[0]["id"]
    script_id = db_rows(ai_db, "WHERE symbol = 'SOL/USD' AND analyst = 'openai'")[0]["id"]
    assert explorer.calls.value == error_id  # the newest is shown first
    text = html.unescape(explorer.detail.value)
    assert EXTRA[3]["error"] in text and "2026-11-20T12:04:00.5+00:00" in text
    assert "You are a careful crypto analyst" in text and "json_schema" in text
    explorer.select(script_id)
    text = explorer.detail.value
    assert "chatcmpl-2" in text and '"close": 98000.0' in html.unescape(text)
    assert "&lt;below&gt;" in text and "<below>" not in text
    assert SCRIPT not in text and html.escape(SCRIPT) in text


def test_model_text_is_escaped_everywhere(explorer: AiLogExplorer) -> None:
    assert html.escape(SCRIPT) in explorer.table.value
    widgets = (explorer.table, explorer.detail, explorer.summary, explorer.exports)
    assert not any("<script" in w.value for w in widgets)


def test_apply_picks_up_new_calls(explorer: AiLogExplorer, ai_db: Path) -> None:
    with Store(ai_db) as store:
        new_id = store.log_decision(_openai(9, model="gpt-5-mini"))
    explorer.apply.click()
    assert shown_ids(explorer)[0] == new_id
    assert ("openai", "gpt-5-mini") in [v for _, v in explorer.source.options]


def test_never_writes_to_the_database(ai_db: Path) -> None:
    before = hashlib.sha256(ai_db.read_bytes()).hexdigest()
    explorer = AiLogExplorer.from_path(ai_db)
    pick_source(explorer, "openai")
    explorer.text.value = "bull"
    explorer.apply.click()
    assert not explorer.totals().empty
    assert hashlib.sha256(ai_db.read_bytes()).hexdigest() == before


def test_totals_follow_the_filters(explorer: AiLogExplorer) -> None:
    pick_source(explorer, "openai")
    frame = explorer.totals("model")
    assert frame.index.tolist() == ["gpt-4o-mini"] and int(frame["calls"].iloc[0]) == 4
    assert int(frame["errors"].iloc[0]) == 1


def test_missing_db_shows_a_status_and_recovers(tmp_path: Path, demo_db: Path) -> None:
    path = tmp_path / "later.db"
    explorer = AiLogExplorer.from_path(path)
    assert "does not exist" in explorer.status.value
    assert "botlib-status-error" in explorer.status._dom_classes
    assert explorer.rows == [] and explorer.refresh() is False
    assert explorer.totals().empty
    copy_db(demo_db, path)
    assert explorer.refresh() is True and explorer.rows
    assert "botlib-status-error" not in explorer.status._dom_classes


def test_unreadable_db_shows_a_status(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    explorer = AiLogExplorer.from_path(path)
    assert "cannot read garbage.db" in explorer.status.value


@pytest.fixture
def locked(ai_db: Path) -> Iterator[Path]:
    """Hold an exclusive write lock on the file, as a stuck writer would."""
    conn = sqlite3.connect(ai_db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield ai_db
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.slow
def test_locked_db_shows_a_status_not_a_traceback(locked: Path) -> None:
    explorer = AiLogExplorer.from_path(locked)
    assert "locked" in explorer.status.value and explorer.rows == []


def test_docstring_examples_run() -> None:
    import doctest

    from botlib.ui.shaping import ai_logs

    assert doctest.testmod(ai_logs).failed == 0
