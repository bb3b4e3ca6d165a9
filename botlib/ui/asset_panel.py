"""One asset's panel: price chart with overlays, and its stats, updated in place."""

from __future__ import annotations

import html

import ipywidgets as widgets

from botlib.queries import DashboardData
from botlib.ui.charts import COLORS, PriceChart
from botlib.ui.parts import stat, value_widgets
from botlib.ui.shaping import ASSET_STATS, asset_texts, chart_data, slug
from botlib.ui.smc_shaping import BREAKS, ZONES

__all__ = ["AssetPanel", "PANEL_CSS"]

_WIDE = ("decision", "reasoning", "cycle", "cycle-reason")  # full-width rows under the chart


def _legend() -> widgets.HTML:
    items = [
        (COLORS["buy"], "▲ buy"),
        (COLORS["sell"], "▼ sell"),
        (COLORS["stop_loss"], "┄ stop"),
        (COLORS["take_profit"], "┄ target"),
        (COLORS["entry"], "┈ entry"),
        (ZONES["bull_fvg"][1], "▮ FVG"),
        (ZONES["bull_ob"][1], "▮ order block"),
        (BREAKS["bos"][1], "● BOS"),
        (BREAKS["choch"][1], "◆ CHoCH"),
    ]
    spans = "".join(f'<span style="color:{color}">{text}</span>' for color, text in items)
    legend = widgets.HTML(spans)
    legend.add_class("botlib-legend")
    return legend


class AssetPanel:
    """One asset's chart and stats; `show` changes their values, never the widgets."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.chart = PriceChart(symbol)
        self.values = value_widgets([key for key, _ in ASSET_STATS], slug(symbol))
        captions = dict(ASSET_STATS)
        narrow = [k for k in self.values if k not in _WIDE]
        stats = widgets.GridBox([stat(captions[k], self.values[k]) for k in narrow])
        stats.add_class("botlib-stats")
        wide = widgets.GridBox([stat(captions[k], self.values[k]) for k in _WIDE])
        wide.add_class("botlib-wide")
        title = widgets.HTML(f"<h3>{html.escape(symbol)}</h3>")
        title.add_class("botlib-title")
        body = widgets.HBox([self.chart.figure, stats])
        body.add_class("botlib-body")
        self.widget = widgets.VBox([widgets.HBox([title, _legend()]), body, wide])
        self.widget.add_class("botlib-panel")
        self.widget.add_class(f"botlib-panel-{slug(symbol)}")

    def show(self, data: DashboardData) -> None:
        """Draw a `DashboardData`; unchanged values send nothing to the browser."""
        self.chart.update(chart_data(data))
        for key, text in asset_texts(data).items():
            self.values[key].value = text


PANEL_CSS = ""  # the panel's own style rules; the dashboard ships them with its stylesheet
