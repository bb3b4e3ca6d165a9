"""The AI-log explorer: filter the analyst's calls, see their cost and latency, read one in full.

It only reads: every query opens the database with `Store(path, read_only=True)` and closes it,
so a writer running beside it is never blocked for long and a replaced file is simply reopened.
No widget writes anything; the exports are data URLs built in the kernel and downloaded by the
browser. A missing, locked or unreadable file shows a status message instead of a traceback.
"""

from __future__ import annotations

import contextlib
import html
import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from botlib.reporting.ai_logs import (
    Grouping,
    LogFilter,
    analysts_and_models,
    query_logs,
    to_csv,
    to_json,
    totals,
)
from botlib.storage.store import Store
from botlib.ui.parts import CSS
from botlib.ui.shaping.ai_logs import (
    call_label,
    cost_series,
    detail_html,
    export_link,
    latency_histogram,
    summarize,
    summary_html,
    table_html,
    token_series,
)

with warnings.catch_warnings():
    # see botlib/ui/charts.py: bqscales warns at import time
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Axis, Bars, DateScale, Figure, LinearScale, Lines

if TYPE_CHECKING:
    from botlib.ui.arena.whatif import WhatIfPanel

__all__ = ["AiLogExplorer", "AiCharts"]

log = logging.getLogger(__name__)
_BUSY_MS = 1000  # how long a query waits for a writer's lock before reporting it
_ALL = "All"  # a string, not None: a Dropdown shows a None value as no choice at all
_ACTIONS = (_ALL, "BUY", "SELL", "HOLD")
_COLORS = {"prompt": "#0969da", "completion": "#bf3989", "cost": "#1a7f37", "latency": "#8250df"}
EXPLORER_CSS = """<style>
.botlib-ai-filters { flex-wrap: wrap; gap: 4px 12px; align-items: center; }
.botlib-ai-charts { gap: 8px; flex-wrap: wrap; }
.botlib-ai-charts > .widget-vbox { flex: 1 1 320px; min-width: 0; }
.botlib-ai-table-box { max-height: 480px; overflow: auto; border: 1px solid #d0d7de;
  border-radius: 6px; }
.botlib-ai-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.botlib-ai-table th, .botlib-ai-table td { padding: 3px 6px; border-bottom: 1px solid #eaeef2;
  text-align: left; vertical-align: top; white-space: nowrap; }
.botlib-ai-table td:last-child { white-space: normal; overflow-wrap: anywhere; min-width: 320px; }
.botlib-ai-table th { background: #f6f8fa; position: sticky; top: 0; }
.botlib-ai-error td { background: #fff8c5; }
.botlib-ai-nodata { color: #59636e; font-style: italic; font-size: 12px; margin: 0; }
.botlib-ai-download { margin-right: 16px; font-weight: 600; }
.botlib-ai-detail pre { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 360px;
  overflow: auto; background: #f6f8fa; padding: 6px; font-size: 12px; margin: 2px 0 8px 0; }
.botlib-ai-fields th { text-align: left; padding-right: 12px; color: #59636e; }
.botlib-ai-detail h4, .botlib-ai-detail h5 { margin: 6px 0 2px 0; }
</style>"""


def _html(css_class: str, value: str = "") -> widgets.HTML:
    widget = widgets.HTML(value)
    widget.add_class(css_class)
    return widget


def _figure(
    title: str, marks: list[Any], scales: dict[str, Any], formats: tuple[str, str]
) -> Figure:
    """Build a small chart; short tick formats, so a 400-pixel-wide figure stays legible."""
    axes = [
        Axis(scale=scales["x"], grid_lines="none", tick_format=formats[0] or None),
        Axis(scale=scales["y"], side="left", grid_lines="dashed", tick_format=formats[1]),
    ]
    figure = Figure(
        marks=marks,
        axes=axes,
        title=title,
        fig_margin={"top": 40, "bottom": 35, "left": 65, "right": 15},
        layout=widgets.Layout(width="100%", height="240px", min_width="0"),
    )
    figure.add_class("botlib-chart")
    return figure


class AiCharts:
    """Tokens per call, cumulative cost and the latency histogram; updated in place."""

    def __init__(self) -> None:
        empty_x, empty_y = np.array([], "datetime64[ms]"), np.array([], float)
        scales = {"x": DateScale(), "y": LinearScale()}
        self.tokens = {
            name: Lines(x=empty_x, y=empty_y, scales=scales, colors=[_COLORS[name]],
                        marker="circle", marker_size=16, labels=[name], display_legend=True)
            for name in ("prompt", "completion")
        }  # fmt: skip
        cost_scales = {"x": DateScale(), "y": LinearScale()}
        self.cost = Lines(x=empty_x, y=empty_y, scales=cost_scales, colors=[_COLORS["cost"]])
        bar_scales = {"x": LinearScale(), "y": LinearScale()}
        self.latency = Bars(x=empty_y, y=empty_y, scales=bar_scales, colors=[_COLORS["latency"]])
        self.figures = {
            "tokens": _figure("Tokens per call", [*self.tokens.values()], scales, ("", ",~g")),
            "cost": _figure("Cumulative cost (USD)", [self.cost], cost_scales, ("", "$.3~g")),
            "latency": _figure("Latency (ms): calls per bin", [self.latency], bar_scales,
                               ("~s", "~g")),
        }  # fmt: skip
        self.notes = {key: _html("botlib-ai-nodata") for key in self.figures}
        boxes = [widgets.VBox([self.figures[k], self.notes[k]]) for k in self.figures]
        self.widget = widgets.HBox(boxes)
        self.widget.add_class("botlib-ai-charts")

    def update(self, rows: list[dict[str, Any]]) -> None:
        """Draw the selection; a chart with nothing to draw is emptied and says so."""
        series = token_series(rows)
        for name, mark in self.tokens.items():
            with mark.hold_sync():
                mark.x, mark.y = series[name].x, series[name].y
        cost = cost_series(rows)
        with self.cost.hold_sync():
            self.cost.x, self.cost.y = cost.x, cost.y
        hist = latency_histogram(rows)
        with self.latency.hold_sync():
            self.latency.x, self.latency.y = hist.centres, hist.counts.astype(float)
        empty = {
            "tokens": all(s.empty for s in series.values()),
            "cost": cost.empty,
            "latency": not len(hist.counts),
        }
        what = {"tokens": "token counts", "cost": "priced calls", "latency": "latencies"}
        for key, none in empty.items():
            self.notes[key].value = f"no data: no {what[key]} in this selection" if none else ""


class AiLogExplorer:
    """Filters, summary, charts, table, exports and a detail view over `ai_decision_logs`."""

    def __init__(
        self, db_path: Path | str, *, limit: int = 200, what_if: WhatIfPanel | None = None
    ) -> None:
        self.path, self.what_if = Path(db_path), what_if
        self.rows: list[dict[str, Any]] = []
        self._quiet = False  # set while the code (not the user) changes filter widgets
        self.status = _html("botlib-status", "starting…")
        self._build_filters(limit)
        self.summary = _html("botlib-ai-summary")
        self.charts = AiCharts()
        self.exports = _html("botlib-ai-exports")
        # Built on request: a data URL of every call (prompts, raw responses) can be megabytes,
        # too much to re-send to the browser on each filter change.
        self.export = widgets.Button(
            description="Prepare JSON / CSV export", layout={"width": "auto"}
        )
        self.export.on_click(lambda _button: self._build_exports())
        self.table = _html("botlib-ai-table-html")
        self.calls = widgets.Dropdown(options=[], description="Call", layout={"width": "520px"})
        self.detail = _html("botlib-ai-detail", detail_html(None))
        self.calls.observe(lambda _change: self._show_detail(), names="value")
        self.widget = self._layout()
        self.refresh()

    @classmethod
    def from_path(cls, db_path: Path | str, **options: Any) -> AiLogExplorer:
        """Open the explorer on a database file (it may not exist yet: the status says so)."""
        return cls(Path(db_path).expanduser().absolute(), **options)

    # widgets -----------------------------------------------------------------------------
    def _build_filters(self, limit: int) -> None:
        self.asset = widgets.Dropdown(options=[_ALL], value=_ALL, description="Asset")
        self.source = widgets.Dropdown(options=[_ALL], value=_ALL, description="Model")
        self.action = widgets.Dropdown(options=list(_ACTIONS), value=_ALL, description="Action")
        self.errors_only = widgets.Checkbox(value=False, description="errors only", indent=False)
        self.limit = widgets.BoundedIntText(
            value=limit, min=1, max=5000, description="Limit", layout={"width": "160px"}
        )
        self.text = widgets.Text(
            value="", placeholder="reasoning contains…", description="Search",
            continuous_update=False,
        )  # fmt: skip
        self.apply = widgets.Button(description="Apply / refresh")  # no icon: CDN font
        self.apply.on_click(lambda _button: self.refresh())
        for control in self._controls():
            control.observe(self._on_filter, names="value")

    def _controls(self) -> list[widgets.ValueWidget]:
        return [self.asset, self.source, self.action, self.errors_only, self.limit, self.text]

    def _layout(self) -> widgets.VBox:
        filters = widgets.HBox([*self._controls(), self.apply])
        filters.add_class("botlib-ai-filters")
        table_box = widgets.Box([self.table])
        table_box.add_class("botlib-ai-table-box")
        root = widgets.VBox([
            widgets.HTML(CSS + EXPLORER_CSS), _html("botlib-brand", "<h2>AI calls</h2>"),
            self.status, filters, self.summary, self.charts.widget,
            widgets.HBox([self.export, self.exports]), table_box,
            _html("botlib-caption", "Call detail"), self.calls, self.detail,
            *([self.what_if.widget] if self.what_if else []),
        ])  # fmt: skip
        root.add_class("botlib-dashboard")
        root.add_class("botlib-ai-explorer")
        return root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display as the widget tree, with a constant text repr (notebook diffs stay quiet)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle["text/plain"] = "botlib AI log explorer"
        return bundle

    # queries -----------------------------------------------------------------------------
    def filters(self) -> LogFilter:
        """Return the filter the widgets describe."""

        def chosen(dropdown: widgets.Dropdown) -> Any:
            return None if dropdown.value == _ALL else dropdown.value

        analyst, model = chosen(self.source) or (None, None)
        return LogFilter(
            symbol=chosen(self.asset),
            analyst=analyst,
            model=model,
            action=chosen(self.action),
            text=self.text.value.strip() or None,
            errors_only=bool(self.errors_only.value),
            limit=int(self.limit.value),
        )

    @contextlib.contextmanager
    def _store(self) -> Iterator[Store]:
        """Open the file read-only for one query, waiting at most `_BUSY_MS` for a writer."""
        store = Store(self.path, read_only=True)
        try:
            store.set_busy_timeout(_BUSY_MS)
            yield store
        finally:
            store.close()

    def refresh(self) -> bool:
        """Re-read the filter choices and the selection and redraw everything; never raise.

        Return False, keeping the last good view, when the database cannot be read.
        """
        try:
            with self._store() as store:
                self._load_choices(store)
                rows = query_logs(store, self.filters())
        except Exception as exc:  # the explorer must survive whatever the file does
            log.debug("AI-log query failed", exc_info=True)
            self._fail(exc)
            return False
        self._show(rows)
        now = datetime.now(UTC)
        self._set_status(
            f"read-only · {len(rows):,} calls shown · refreshed {now:%H:%M:%S} UTC", ok=True
        )
        return True

    def totals(self, by: Grouping = "model") -> pd.DataFrame:
        """Return `botlib.reporting.ai_logs.totals` for the current filters (all matches, not
        only those shown)."""
        try:
            with self._store() as store:
                return totals(store, by, self.filters())
        except Exception as exc:
            self._fail(exc)
            return pd.DataFrame()

    def _load_choices(self, store: Store) -> None:
        """Offer the assets and analyst/model pairs the database has now, keeping the choice."""
        assets = [(_ALL, _ALL), *((a.symbol, a.symbol) for a in store.list_assets())]
        pairs = analysts_and_models(store)
        sources = [(_ALL, _ALL)] + [
            (f"{p['analyst'] or '?'} / {p['model'] or '?'}", (p["analyst"], p["model"]))
            for p in pairs
        ]
        self._set_options(self.asset, assets)
        self._set_options(self.source, sources)

    def _set_options(self, dropdown: widgets.Dropdown, options: list[tuple[str, Any]]) -> None:
        if list(dropdown.options) == options:
            return
        chosen = dropdown.value
        self._quiet = True
        try:
            dropdown.options = options
            dropdown.value = chosen if chosen in [v for _, v in options] else _ALL
        finally:
            self._quiet = False

    def _on_filter(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self.refresh()

    # drawing -----------------------------------------------------------------------------
    def _show(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.summary.value = summary_html(summarize(rows))
        self.table.value = table_html(rows)
        self.charts.update(rows)
        self.exports.value = f'<span class="botlib-caption">{len(rows):,} calls selected</span>'
        chosen = self.calls.value
        ids = [row["id"] for row in rows]
        self._quiet = True
        try:
            self.calls.options = [(call_label(row), row["id"]) for row in rows]
            self.calls.value = chosen if chosen in ids else (ids[0] if ids else None)
        finally:
            self._quiet = False
        self._show_detail()

    def _build_exports(self) -> None:
        """Offer the current selection as JSON and CSV downloads (nothing is written here)."""
        self.exports.value = (
            export_link(to_json(self.rows), "ai_logs.json", "application/json", "⬇ JSON")
            + export_link(to_csv(self.rows), "ai_logs.csv", "text/csv", "⬇ CSV")
            + f'<span class="botlib-caption">{len(self.rows):,} calls (the current selection)'
            "</span>"
        )

    def select(self, call_id: int) -> None:
        """Show one listed call in the detail view."""
        self.calls.value = call_id

    def _show_detail(self) -> None:
        if self._quiet:
            return
        row = next((r for r in self.rows if r["id"] == self.calls.value), None)
        self.detail.value = detail_html(row)
        if self.what_if is not None:
            self.what_if.show(None if row is None else int(row["id"]))

    def _fail(self, exc: Exception) -> None:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._set_status(f"⚠ cannot read {self.path.name}: {detail}", ok=False)

    def _set_status(self, text: str, *, ok: bool) -> None:
        self.status.value = html.escape(text)
        if ok:
            self.status.remove_class("botlib-status-error")
        else:
            self.status.add_class("botlib-status-error")
