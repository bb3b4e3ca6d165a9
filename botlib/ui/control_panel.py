"""The operator's control panel (JupyterLab, not Voila): change settings, close, kill switch.

Every widget only collects input: the `botlib.ops.control` functions validate it, write it and audit
it, and their message (or error) is shown here. The widgets' own bounds are never relied on. The
engine (it needs a broker, maybe Alpaca) is built only when a position must be closed. Callbacks
never raise into the notebook: whatever goes wrong ends up in the message area.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import ipywidgets as widgets

from botlib.core.engine import Engine
from botlib.core.risk import RiskLimits
from botlib.models import AssetSettings
from botlib.ops.control import (
    KILL_PHRASE,
    close_now,
    kill_switch,
    recent_actions,
    set_analyst,
    set_interval,
    set_limits,
    set_paused,
    set_position_size,
    set_stops,
)
from botlib.ops.limits import load_limits
from botlib.storage.store import Store

__all__ = ["ControlPanel", "AssetRow", "LimitsForm", "KillSwitch"]

log = logging.getLogger(__name__)

INTERVAL_OPTIONS = [("1 min", 1), ("5 min", 5), ("15 min", 15), ("30 min", 30), ("1 h", 60)]
ANALYST_OPTIONS = [("default", ""), ("rules", "rules"), ("openai", "openai")]
LIMIT_LABELS = {
    "max_position_pct": "max position %",
    "max_daily_loss_pct": "max daily loss %",
    "max_drawdown_pct": "max drawdown %",
    "llm_budget_usd": "LLM budget USD/day",
}
_ACTION_COLUMNS = ("ts", "actor", "action", "symbol", "result", "message")
CONTROL_CSS = """<style>
.botlib-control { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; gap: 6px; }
.botlib-control-row { align-items: center; gap: 4px; flex-wrap: wrap;
  border-bottom: 1px solid #eaeef2; padding: 2px 0; }
.botlib-control-symbol { width: 80px; font-weight: 600; }
.botlib-message { font-size: 13px; margin: 0; }
.botlib-message-ok { color: #1a7f37; }
.botlib-message-error { color: #cf222e; font-weight: 600; }
.botlib-actions { border-collapse: collapse; font-size: 12px; }
.botlib-actions th, .botlib-actions td { padding: 2px 8px; border-bottom: 1px solid #eaeef2;
  text-align: left; }
.botlib-rejected td { color: #cf222e; }
</style>"""
_NARROW = {"description_width": "initial"}


def _number(description: str, width: str = "150px") -> widgets.FloatText:
    return widgets.FloatText(description=description, style=_NARROW, layout={"width": width})


class AssetRow:
    """One asset's settings; `show` loads the stored values, `changes` lists what was edited.
    `arena`: the arena file's analysts, offered beside rules and openai (promoting a shadow)."""

    def __init__(self, symbol: str, arena: Sequence[str] = ()) -> None:
        self.symbol = symbol
        self.stored: AssetSettings | None = None
        self.paused = widgets.Checkbox(description="paused", indent=False, layout={"width": "80px"})
        self.interval = widgets.Dropdown(
            options=INTERVAL_OPTIONS, description="every", style=_NARROW, layout={"width": "130px"}
        )
        self.size = _number("size %")
        self.stop_loss = _number("stop-loss %")
        self.take_profit = _number("take-profit %")
        extra = [(name, name) for name in arena if name not in ("rules", "openai")]
        self.analyst = widgets.Dropdown(options=[*ANALYST_OPTIONS, *extra], description="analyst",
                                        style=_NARROW, layout={"width": "160px"})  # fmt: skip
        self.apply = widgets.Button(description="Apply", button_style="primary")
        self.close = widgets.Button(description="Close position now", button_style="warning")
        label = widgets.HTML(f"<b>{html.escape(symbol)}</b>")
        label.add_class("botlib-control-symbol")
        parts = [self.paused, self.interval, self.size, self.stop_loss, self.take_profit]
        self.widget = widgets.HBox([label, *parts, self.analyst, self.apply, self.close])
        self.widget.add_class("botlib-control-row")

    def show(self, asset: AssetSettings) -> None:
        """Set every widget to the stored value (unsaved edits in this row are dropped)."""
        self.stored = asset
        if asset.interval_minutes not in dict(INTERVAL_OPTIONS).values():
            extra = (f"{asset.interval_minutes} min", asset.interval_minutes)
            self.interval.options = [*INTERVAL_OPTIONS, extra]
        self.paused.value = asset.paused
        self.interval.value = asset.interval_minutes
        self.size.value = asset.position_size_pct
        self.stop_loss.value = asset.stop_loss_pct
        self.take_profit.value = asset.take_profit_pct
        self.analyst.value = asset.analyst or ""

    def values(self) -> dict[str, Any]:
        return {
            "paused": self.paused.value,
            "interval_minutes": self.interval.value,
            "position_size_pct": self.size.value,
            "stop_loss_pct": self.stop_loss.value,
            "take_profit_pct": self.take_profit.value,
            "analyst": self.analyst.value or None,
        }

    def changes(self) -> dict[str, Any]:
        """Return the edited fields (name -> new value) against the stored settings."""
        if self.stored is None:
            return {}
        stored = self.stored.model_dump()
        return {name: value for name, value in self.values().items() if value != stored[name]}


class LimitsForm:
    """The account-wide risk limits, edited together and applied with one button."""

    def __init__(self) -> None:
        self.stored: RiskLimits | None = None
        self.fields = {name: _number(label, "210px") for name, label in LIMIT_LABELS.items()}
        self.apply = widgets.Button(description="Apply limits", button_style="primary")
        self.widget = widgets.HBox([*self.fields.values(), self.apply])
        self.widget.add_class("botlib-control-row")

    def show(self, limits: RiskLimits) -> None:
        self.stored = limits
        for name, field in self.fields.items():
            field.value = getattr(limits, name)

    def changes(self) -> dict[str, float]:
        if self.stored is None:
            return {}
        return {n: f.value for n, f in self.fields.items() if f.value != getattr(self.stored, n)}


class KillSwitch:
    """A red button that only reveals the confirmation step: the phrase must be typed."""

    def __init__(self) -> None:
        self.button = widgets.Button(
            description="Kill switch: pause all, flatten", button_style="danger", icon="stop",
            layout={"width": "260px"},
        )  # fmt: skip
        self.phrase = widgets.Text(placeholder=KILL_PHRASE, layout={"width": "160px"})
        self.confirm = widgets.Button(description="Confirm", button_style="danger")
        self.cancel = widgets.Button(description="Cancel")
        prompt = widgets.HTML(
            f"Pauses every asset and sells every position at market. Type <b>{KILL_PHRASE}</b>:"
        )
        self.box = widgets.HBox([prompt, self.phrase, self.confirm, self.cancel])
        self.widget = widgets.VBox([self.button, self.box])
        self.button.on_click(lambda _button: self.reveal(True))
        self.cancel.on_click(lambda _button: self.reveal(False))
        self.reveal(False)

    @property
    def visible(self) -> bool:
        return self.box.layout.display != "none"

    def reveal(self, visible: bool) -> None:
        """Show or hide the confirmation step; the typed phrase never outlives it."""
        self.box.layout.display = "flex" if visible else "none"
        self.phrase.value = ""


class ControlPanel:
    """Per-asset settings, risk limits, close and kill buttons, and the recent operator actions.

    `store` must be writable; `limits` are the environment's (the operator's overrides in the
    database go on top); `engine_factory()` returns the `Engine` that closes positions (built on
    first use, then kept). `actor` defaults to the OS user (see `botlib.ops.control`).
    `botlib.app.jupyter.pages.control_panel` builds one from the settings.
    """

    def __init__(
        self,
        store: Store,
        limits: RiskLimits,
        engine_factory: Callable[[], Engine],
        *,
        actor: str | None = None,
        history: int = 20,
        arena: Sequence[str] = (),
    ) -> None:
        self.store, self.base_limits, self.actor, self.history = store, limits, actor, history
        self.arena = tuple(arena)
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self.ok: bool | None = None  # the last result: True ok, False error, None nothing yet
        self.rows: dict[str, AssetRow] = {}
        self.limits = LimitsForm()
        self.kill = KillSwitch()
        self.message = widgets.HTML("")
        self.message.add_class("botlib-message")
        self.actions = widgets.HTML("")
        self.reload = widgets.Button(description="Reload", icon="refresh")
        self._rows_box = widgets.VBox([])
        self.widget = self._layout()
        self._wire()
        self.refresh()

    def _layout(self) -> widgets.VBox:
        title = widgets.HTML("<h3>botlib control</h3>")
        heading = widgets.HBox([title, self.reload])
        limits = widgets.VBox([widgets.HTML("<b>Risk limits</b>"), self.limits.widget])
        recent = widgets.VBox([widgets.HTML("<b>Recent operator actions</b>"), self.actions])
        root = widgets.VBox([widgets.HTML(CONTROL_CSS), heading, self.message, self._rows_box,
                             limits, self.kill.widget, recent])  # fmt: skip
        root.add_class("botlib-control")
        return root

    def _wire(self) -> None:
        self.reload.on_click(lambda _button: self._guarded(self._reload_all))
        self.limits.apply.on_click(lambda _button: self._guarded(self._apply_limits))
        self.kill.confirm.on_click(lambda _button: self._guarded(self._kill))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display as the widget tree, with a constant text repr (notebook diffs stay quiet)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle["text/plain"] = "botlib control panel"
        return bundle

    def close(self) -> None:
        """Close the store (the panel is unusable afterwards)."""
        self.store.close()

    # reading ------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read assets, limits and recent actions from the DB; False (and say why) on error."""
        try:
            self._reload_all()
        except Exception as exc:  # a broken file must not raise into the notebook
            log.debug("control panel reload failed", exc_info=True)
            self._say([(False, f"cannot read the database: {exc}")])
            return False
        return True

    def _reload_all(self) -> list[tuple[bool, str]]:
        for asset in self.store.list_assets():
            (self.rows.get(asset.symbol) or self._add_row(asset.symbol)).show(asset)
        self.limits.show(load_limits(self.store, self.base_limits))
        self._show_actions()
        return [(True, f"reloaded {len(self.rows)} asset(s) from {self.store.path}")]

    def _add_row(self, symbol: str) -> AssetRow:
        row = AssetRow(symbol, self.arena)
        row.apply.on_click(lambda _button: self._guarded(partial(self._apply_row, row)))
        row.close.on_click(lambda _button: self._guarded(partial(self._close, row)))
        self.rows[symbol] = row
        self._rows_box.children = (*self._rows_box.children, row.widget)
        return row

    def _show_actions(self) -> None:
        self.actions.value = actions_html(recent_actions(self.store, self.history))

    # acting -------------------------------------------------------------------------------
    def _apply_row(self, row: AssetRow) -> list[tuple[bool, str]]:
        changes = row.changes()
        if not changes:
            return [(True, f"{row.symbol}: nothing changed")]
        results = [_attempt(call) for call in self._row_calls(row.symbol, changes)]
        row.show(self.store.get_asset(row.symbol))
        return results

    def _row_calls(self, symbol: str, changes: dict[str, Any]) -> list[Callable[[], str]]:
        """Turn a row's edits into `botlib.ops.control` calls, one audited action each."""
        single: dict[str, Callable[..., str]] = {
            "paused": set_paused,
            "interval_minutes": set_interval,
            "position_size_pct": set_position_size,
            "analyst": partial(set_analyst, known=self.arena),
        }
        calls: list[Callable[[], str]] = [
            partial(single[name], self.store, symbol, value, actor=self.actor)
            for name, value in changes.items()
            if name in single
        ]
        if "stop_loss_pct" in changes or "take_profit_pct" in changes:
            stop, take = changes.get("stop_loss_pct"), changes.get("take_profit_pct")
            calls.append(partial(set_stops, self.store, symbol, stop, take, actor=self.actor))
        return calls

    def _apply_limits(self) -> list[tuple[bool, str]]:
        changes: dict[str, Any] = self.limits.changes()
        if not changes:
            return [(True, "risk limits: nothing changed")]
        call = partial(set_limits, self.store, self.base_limits, actor=self.actor, **changes)
        result = _attempt(call)
        self.limits.show(load_limits(self.store, self.base_limits))
        return [result]

    def _close(self, row: AssetRow) -> list[tuple[bool, str]]:
        return [(True, close_now(self.engine(), row.symbol, actor=self.actor))]

    def _kill(self) -> list[tuple[bool, str]]:
        phrase, self.kill.phrase.value = self.kill.phrase.value, ""
        message = kill_switch(self.engine(), phrase, actor=self.actor)
        self.kill.reveal(False)
        self._reload_all()
        return [(True, message)]

    def engine(self) -> Engine:
        """Return the engine, building it on first use (it may need broker credentials)."""
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def _guarded(self, work: Callable[[], list[tuple[bool, str]]]) -> None:
        """Run a callback's work and show its outcome; never raise into the notebook."""
        try:
            results = work()
        except Exception as exc:
            log.debug("control panel action failed", exc_info=True)
            results = [(False, str(exc) or type(exc).__name__)]
        try:
            self._show_actions()
        except Exception as exc:
            results.append((False, f"cannot read the operator actions: {exc}"))
        self._say(results)

    def _say(self, results: list[tuple[bool, str]]) -> None:
        """Show each result line, green when it went through and red when it did not."""
        self.ok = all(ok for ok, _ in results)
        lines = (
            f'<div class="botlib-message-{"ok" if ok else "error"}">'
            f"{'✓' if ok else '✗'} {html.escape(text)}</div>"
            for ok, text in results
        )
        self.message.value = "".join(lines)
        self.message.remove_class("botlib-message-ok").remove_class("botlib-message-error")
        self.message.add_class("botlib-message-ok" if self.ok else "botlib-message-error")


def _attempt(call: Callable[[], str]) -> tuple[bool, str]:
    """Run one control call; a refusal becomes a red line instead of stopping the others."""
    try:
        return True, call()
    except Exception as exc:
        log.debug("control call failed", exc_info=True)
        return False, str(exc) or type(exc).__name__


def actions_html(rows: list[dict[str, Any]]) -> str:
    """Render operator actions as an escaped HTML table (rejected ones in red)."""
    if not rows:
        return "<i>no operator actions yet</i>"
    head = "".join(f"<th>{c}</th>" for c in _ACTION_COLUMNS)
    body = "".join(
        f'<tr class="botlib-{html.escape(str(r["result"]))}">'
        + "".join(f"<td>{html.escape(str(r[c] or ''))}</td>" for c in _ACTION_COLUMNS)
        + "</tr>"
        for r in rows
    )
    return f'<table class="botlib-actions"><tr>{head}</tr>{body}</table>'
