"""The read-only dashboard: an account header and one chart-and-stats panel per asset.

It only reads (`Store(path, read_only=True)`) and has no widget that writes or trades: under Voila
the widget callbacks are all a page's visitor can reach. A hidden `Play` widget, ticking in the
browser, drives `refresh()`; it stops when the page goes, so an abandoned kernel turns idle and
Voila's culling removes it.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from botlib.config import load_settings
from botlib.queries import (
    account_overview,
    dashboard_data,
    list_assets,
    recent_cycles,
)
from botlib.store import Store
from botlib.ui.asset_panel import AssetPanel
from botlib.ui.parts import stat, value_widgets
from botlib.ui.shaping import HEADER_STATS, header_texts
from botlib.ui.styles import CSS

__all__ = ["Dashboard", "AssetPanel"]

log = logging.getLogger(__name__)
_TICKS = 2**31 - 1  # the Play widget's range; at one tick a second it lasts 68 years
_BUSY_MS = 1000  # how long a refresh waits for a writer's lock before reporting it


class Dashboard:
    """Account header plus one `AssetPanel` per configured asset, refreshed from the store.

    `source` is an open read-only `Store`, or a database path that is (re)opened on demand,
    so a missing or broken file shows a status message and is retried on the next tick.
    """

    def __init__(
        self,
        source: Store | Path | str,
        *,
        interval_s: float = 3.0,
        bars: int = 200,
        llm_budget_usd: float | None = None,
    ) -> None:
        self._store: Store | None = source if isinstance(source, Store) else None
        self._path = Path(source.path if isinstance(source, Store) else source)
        self._owns_store = self._store is None
        self._file: tuple[int, int] | None = None
        self._version: int | None = None
        self.interval_s, self.bars, self.llm_budget_usd = interval_s, bars, llm_budget_usd
        self.panels: dict[str, AssetPanel] = {}
        self.header = value_widgets([key for key, _ in HEADER_STATS], "")
        self.status = widgets.HTML("starting…")
        self.status.add_class("botlib-status")
        self.ticker = self._make_ticker(interval_s)
        self._assets = widgets.VBox([])
        self._assets.add_class("botlib-assets")
        self.widget = self._layout()
        self.refresh()

    @classmethod
    def from_path(cls, db_path: Path | str, **options: Any) -> Dashboard:
        """Open the dashboard on a database file (it may not exist yet)."""
        return cls(Path(db_path).expanduser().absolute(), **options)

    @classmethod
    def from_env(cls, **options: Any) -> Dashboard:
        """Open the dashboard on `BOTLIB_DB` (the path `botlib serve` passes to Voila)."""
        # Only the environment: the kernel never reads a `.env` that may hold API keys.
        settings = load_settings(env_file=None)
        options.setdefault("llm_budget_usd", settings.max_llm_usd_per_day)
        return cls.from_path(settings.db_path, **options)

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

    def _layout(self) -> widgets.VBox:
        captions = dict(HEADER_STATS)
        header = widgets.HBox([stat(captions[k], v) for k, v in self.header.items()])
        header.add_class("botlib-header")
        title = widgets.HTML("<h2>botlib</h2>")
        title.add_class("botlib-brand")
        top = widgets.HBox([title, header])
        top.add_class("botlib-top")
        root = widgets.VBox([widgets.HTML(CSS), top, self.status, self._assets, self.ticker])
        root.add_class("botlib-dashboard")
        return root

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
    def refresh(self) -> bool:
        """Re-read the database and update the widgets in place; never raise.

        Return False (and say why in the status line, keeping the last good values) when the
        database cannot be read; the next tick retries.
        """
        try:
            store = self._open()
            version = int(store.db.execute("PRAGMA data_version").fetchone()[0])
            if version != self._version:
                with _snapshot(store):
                    self._show(store)
                self._version = version
        except Exception as exc:  # a dashboard must survive anything the file does
            log.debug("dashboard refresh failed", exc_info=True)
            self._fail(exc)
            return False
        now = datetime.now(UTC)
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
            store.db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            self._store, self._version = store, None
        return self._store

    def _show(self, store: Store) -> None:
        latest = recent_cycles(store, 1)
        overview = account_overview(store)
        texts = header_texts(overview, latest[0] if latest else None, self.llm_budget_usd)
        for key, text in texts.items():
            self.header[key].value = text
        for asset in list_assets(store):
            panel = self.panels.get(asset.symbol) or self._add_panel(asset.symbol)
            panel.show(dashboard_data(store, asset.symbol, bars=self.bars))

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


@contextlib.contextmanager
def _snapshot(store: Store) -> Iterator[None]:
    """Read inside one transaction, so the header and panels show the same moment."""
    conn = store.db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
