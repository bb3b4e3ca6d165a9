"""The AI-log explorer's What if…: rerun the selected decision with another arena analyst.

Only where keys are (the explorer opened in JupyterLab with `what_if=True`; never in the
read-only page Voila serves): pick an analyst, read what the call costs (`call_estimate`),
then Run. The rerun uses exactly the logged inputs (`botlib.arena.replay`), logs its call in a
scratch database (the bot's stays untouched) and shows both answers side by side.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from botlib.arena.replay import call_estimate, rebuild, what_if
from botlib.ports import Analyst
from botlib.storage.store import Store

__all__ = ["WhatIfPanel", "side_by_side_html"]

_ROWS = ("analyst", "model", "action", "confidence", "position_size_pct", "stop_loss",
         "take_profit", "reasoning", "cost_usd")  # fmt: skip
Builder = Callable[[str, Any, Store], Analyst]  # (name, spec, scratch store) -> the analyst


def side_by_side_html(answer: dict[str, Any]) -> str:
    """The original decision and the rerun, field by field."""
    same = "the logged prompt, rebuilt byte for byte" if answer["same_prompt"] else (
        "a prompt that differs from the logged one")  # fmt: skip
    rows = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(answer['original'].get(name)))}</td>"
        f"<td>{html.escape(str(answer['rerun'].get(name)))}</td></tr>"
        for name in _ROWS
    )
    return (f"<p>Decision {answer['decision_id']}: both answers on {same}.</p>"
            '<table class="botlib-metrics botlib-whatif"><thead><tr><th></th><th>logged</th>'
            f"<th>what if</th></tr></thead><tbody>{rows}</tbody></table>")  # fmt: skip


class WhatIfPanel:
    """Analyst picker, cost, Run, and the side-by-side answer for one decision at a time."""

    def __init__(self, db_path: Path | str, analysts: Mapping[str, Any], build: Builder) -> None:
        self.path, self.analysts, self.build = Path(db_path), dict(analysts), build
        self.decision_id: int | None = None
        self.analyst = widgets.Dropdown(options=list(self.analysts), description="What if")
        self.cost = widgets.HTML("")
        self.run = widgets.Button(description="Run", button_style="warning", disabled=True)
        self.result = widgets.HTML("")
        self.analyst.observe(lambda _change: self._estimate(), names="value")
        self.run.on_click(lambda _button: self.rerun())
        self.widget = widgets.VBox([widgets.HBox([self.analyst, self.cost, self.run]),
                                    self.result])  # fmt: skip
        self.widget.add_class("botlib-whatif-panel")

    def show(self, decision_id: int | None) -> None:
        """Follow the explorer's selection (a new decision clears the last answer)."""
        self.decision_id, self.result.value = decision_id, ""
        self._estimate()

    def _estimate(self) -> None:
        name = self.analyst.value
        if self.decision_id is None or name is None:
            self.cost.value, self.run.disabled = "pick a call above", True
            return
        try:
            usd = call_estimate(self.analysts[name], rebuild(self.path, self.decision_id))
        except Exception as exc:  # e.g. a decision without a request: say so, run nothing
            self.cost.value, self.run.disabled = f"⚠ {html.escape(str(exc))}", True
            return
        self.cost.value = "no price for this model" if usd is None else f"costs ~${usd:,.4f}"
        self.run.disabled = False

    def rerun(self) -> dict[str, Any] | None:
        """Run the chosen analyst on the selected decision; show and return both answers."""
        if self.decision_id is None or self.analyst.value is None:
            return None
        name = self.analyst.value
        with Store(":memory:") as scratch:
            answer = what_if(self.path, self.decision_id, self.build(name, self.analysts[name],
                                                                     scratch))  # fmt: skip
        self.result.value = side_by_side_html(answer)
        return answer
