"""The read-only dashboard: account header, status lights, HALTED banner, one chart-and-stats
panel per asset, performance charts and metrics, and an activity feed.

It only reads (`Store(path, read_only=True)`) and has no widget that writes or trades: under Voila
the widget callbacks are all a page's visitor can reach (the optional AI-log tab only filters and
exports what it reads). A hidden `Play` widget, ticking in the browser, drives `refresh()`; it
stops when the page goes, so an abandoned kernel turns idle and Voila's culling removes it.
"""

from __future__ import annotations

import contextlib
import html
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from botlib.clock import SystemClock
from botlib.core.risk import RiskLimits
from botlib.ops.limits import load_limits
from botlib.ports import Clock
from botlib.reporting.activity import read_activity
from botlib.reporting.monitoring import read_account, read_performance
from botlib.reporting.queries import dashboard_data, list_assets
from botlib.storage.store import Store
from botlib.ui.activity import ActivityFeed
from botlib.ui.asset_panel import PANEL_CSS, AssetPanel
from botlib.ui.header import Header
from botlib.ui.parts import CSS
from botlib.ui.performance import PerformanceSection

if TYPE_CHECKING:
    from botlib.ui.ai_explorer import AiLogExplorer
    from botlib.ui.arena.tab import ArenaTab

__all__ = ["Dashboard", "AssetPanel"]

log = logging.getLogger(__name__)
_TICKS = 2**31 - 1  # the Play widget's range; at one tick a second it lasts 68 years
_BUSY_MS = 1000  # how long a refresh waits for a writer's lock before reporting it


class Dashboard:
    """Header, lights, banner, one `AssetPanel` per asset, performance and activity, refreshed
    from the store in place (widgets are built once; new assets are appended).

    `source` is an open read-only `Store`, or a database path that is (re)opened on demand,
    so a missing or broken file shows a status message and is retried on the next tick.
    `limits` are the environment's (`Settings.limits`); the operator's overrides in the database
    are laid on top at every read. `default_analyst` names the analyst of assets without their
    own. `clock` is injectable for tests. `botlib.app.jupyter.pages.dashboard` builds one from
    the settings `botlib serve` passes.
    """

    def __init__(
        self,
        source: Store | Path | str,
        *,
        interval_s: float = 3.0,
        bars: int = 200,
        limits: RiskLimits | None = None,
        default_analyst: str | None = None,
        clock: Clock | None = None,
        with_ai_logs: bool = False,
        feed_rows: int = 30,
        with_arena: bool = False,
    ) -> None:
        self._store: Store | None = source if isinstance(source, Store) else None
        self._path = Path(source.path if isinstance(source, Store) else source)
        self._owns_store = self._store is None
        self._file: tuple[int, int] | None = None
        self._version: int | None = None
        self._day: date | None = None  # the UTC day of the last full read (day P&L, LLM spend)
        self.interval_s, self.bars, self.feed_rows = interval_s, bars, feed_rows
        self.limits = limits or RiskLimits()
        self._default_analyst = default_analyst
        self.clock: Clock = clock or SystemClock()
        self.panels: dict[str, AssetPanel] = {}
        self.header = Header()
        self.performance = PerformanceSection()
        self.activity = ActivityFeed()
        self.status = widgets.HTML("starting…")
        self.status.add_class("botlib-status")
        self.ticker = self._make_ticker(interval_s)
        self._assets = widgets.VBox([])
        self._assets.add_class("botlib-assets")
        self.ai_explorer: AiLogExplorer | None = None  # built when its tab is first opened
        self._ai_box = widgets.VBox([widgets.HTML("loading…")])
        self.arena: ArenaTab | None = None  # likewise
        self._arena_box = widgets.VBox([widgets.HTML("loading…")])
        self.main = self._layout()
        self._pages = [("Dashboard", self.main)]
        self._pages += [("AI log", self._ai_box)] if with_ai_logs else []
        self._pages += [("Arena", self._arena_box)] if with_arena else []
        self.widget: widgets.Box = self._tabs() if len(self._pages) > 1 else self.main
        self.refresh()

    @classmethod
    def from_path(cls, db_path: Path | str, **options: Any) -> Dashboard:
        """Open the dashboard on a database file (it may not exist yet)."""
        return cls(Path(db_path).expanduser().absolute(), **options)

    def _make_ticker(self, interval_s: float) -> widgets.Play:
        # `playing=True` set here would never reach the browser's timer: start it once a view
        # exists (see JUPYTER.md, "Play gotcha").
        ticker = widgets.Play(
            value=0,
            min=0,
            max=_TICKS,
            interval=max(int(interval_s * 1000), 250),
            repeat=True,
            _view_count=0,
            layout=widgets.Layout(display="none"),
        )
        ticker.observe(self._start_ticking, names="_view_count")
        ticker.observe(lambda _change: self.refresh(), names="value")
        return ticker

    def _start_ticking(self, change: dict[str, Any]) -> None:
        if (change["new"] or 0) > 0 and not self.ticker.playing:
            self.ticker.playing = True
            # A pre-heated kernel ran the notebook minutes before this page opened: catch up
            # now rather than one interval later.
            self.refresh()

    def _layout(self) -> widgets.VBox:
        title = widgets.HTML("<h2>botlib</h2>")
        title.add_class("botlib-brand")
        top = widgets.HBox([title, self.header.widget])
        top.add_class("botlib-top")
        root = widgets.VBox(
            [
                widgets.HTML(CSS + PANEL_CSS),
                top,
                self.header.banner,
                self.header.lights_row,
                self.status,
                self._assets,
                self.performance.widget,
                self.activity.widget,
                self.ticker,
            ]
        )
        root.add_class("botlib-dashboard")
        return root

    def _tabs(self) -> widgets.Tab:
        """Put the dashboard, the AI-log explorer and the arena in tabs; the other tabs are
        built on first use (they query tables a trader who never opens them doesn't need)."""
        titles, pages = zip(*self._pages, strict=True)
        tabs = widgets.Tab(children=list(pages), titles=titles)
        tabs.add_class("botlib-tabs")
        tabs.observe(self._on_tab, names="selected_index")
        return tabs

    def _on_tab(self, change: dict[str, Any]) -> None:
        title = self._pages[change["new"]][0] if change["new"] is not None else ""
        if title == "AI log" and self.ai_explorer is None:
            from botlib.ui.ai_explorer import AiLogExplorer  # only when asked for

            self.ai_explorer = AiLogExplorer.from_path(self._path)
            self._ai_box.children = (self.ai_explorer.widget,)
        elif title == "Arena":  # re-read each time it is opened
            if self.arena is None:
                from botlib.ui.arena.tab import ArenaTab

                self.arena = ArenaTab(self._path)
                self._arena_box.children = (self.arena.widget,)
            else:
                self.arena.refresh()

    def close(self) -> None:
        """Stop the ticker and close the store if the dashboard opened it."""
        self.ticker.playing = False
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display as the widget tree, with a constant text repr (notebook diffs stay quiet)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle["text/plain"] = "botlib dashboard"
        return bundle

    # refresh ------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the database when it changed (or a new UTC day began, or `force`) and update
        the widgets in place; otherwise only re-judge the clock-dependent parts. Never raise.

        Return False (and say why in the status line, keeping the last good values) when the
        database cannot be read; the next tick retries.
        """
        now = self.clock.now()
        try:
            store = self._open()
            version = store.data_version()
            if force or version != self._version or now.astimezone(UTC).date() != self._day:
                with store.snapshot():
                    self._show(store, now)
                self._version, self._day = version, now.astimezone(UTC).date()
            else:
                self.header.tick(now)  # a dead scheduler writes nothing: age it anyway
        except Exception as exc:  # a dashboard must survive anything the file does
            log.debug("dashboard refresh failed", exc_info=True)
            self._fail(exc)
            return False
        self._set_status(f"● live · read-only · refreshed {now:%H:%M:%S} UTC", ok=True)
        return True

    def _open(self) -> Store:
        """Return the store; reopen an owned one whose file was replaced (e.g. a new demo DB)."""
        if self._owns_store and self._store is not None and _file_id(self._path) != self._file:
            self._store.close()
            self._store = None
        if self._store is None:
            self._file = _file_id(self._path)
            store = Store(self._path, read_only=True)
            # A tick must not block the kernel for long on a locked file: the next one retries.
            store.set_busy_timeout(_BUSY_MS)
            self._store, self._version = store, None
        return self._store

    def _show(self, store: Store, now: datetime) -> None:
        limits = load_limits(store, self.limits)
        self.header.show(read_account(store, now, limits), now)
        for asset in list_assets(store):
            panel = self.panels.get(asset.symbol) or self._add_panel(asset.symbol)
            panel.show(
                dashboard_data(
                    store, asset.symbol, bars=self.bars, default_analyst=self._default_analyst
                )
            )
        self.performance.show(read_performance(store))
        self.activity.show(read_activity(store, self.feed_rows))

    def _add_panel(self, symbol: str) -> AssetPanel:
        """Add a panel for an asset that appeared (existing panels are kept as they are)."""
        panel = AssetPanel(symbol)
        self.panels[symbol] = panel
        self._assets.children = (*self._assets.children, panel.widget)
        return panel

    def _fail(self, exc: Exception) -> None:
        if self._owns_store and self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._set_status(
            f"⚠ cannot read {self._path.name}: {detail} · retrying every {self.interval_s:g} s",
            ok=False,
        )

    def _set_status(self, text: str, *, ok: bool) -> None:
        self.status.value = html.escape(text)
        if ok:
            self.status.remove_class("botlib-status-error")
        else:
            self.status.add_class("botlib-status-error")


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
