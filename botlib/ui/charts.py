"""One asset's bqplot price chart, built once and updated in place on every refresh."""

from __future__ import annotations

import warnings

import numpy as np
from ipywidgets import Layout

with warnings.catch_warnings():
    # bqscales 0.3 (under bqplot) passes metadata to a traitlets constructor at import time;
    # silenced here so `python -W error` and pytest's warnings-as-errors can import botlib.ui.
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Axis, DateScale, Figure, LinearScale, Lines, Scatter

from botlib.ui.shaping import ChartData, slug
from botlib.ui.smc_marks import SmcMarks

__all__ = ["PriceChart", "COLORS"]

COLORS = {
    "close": "#0969da",
    "buy": "#1a7f37",
    "sell": "#cf222e",
    "stop_loss": "#cf222e",
    "take_profit": "#1a7f37",
    "entry": "#8c959f",
}
_NO_TIMES = np.array([], dtype="datetime64[ms]")
_NO_VALUES = np.array([], dtype=float)


def _fill_marks(scales: dict[str, object]) -> tuple[Scatter, Scatter]:
    """Build buy (up) and sell (down) triangles."""

    def marks(side: str, marker: str) -> Scatter:
        return Scatter(
            x=_NO_TIMES,
            y=_NO_VALUES,
            scales=scales,
            marker=marker,
            colors=[COLORS[side]],
            stroke="white",
            default_size=90,
        )

    return marks("buy", "triangle-up"), marks("sell", "triangle-down")


class PriceChart:
    """Close line, fill markers and stop/target/entry levels of one asset.

    `update` only assigns new arrays to the existing marks (one message per mark, via
    `hold_sync`), so the browser redraws without rebuilding the figure.
    """

    def __init__(self, symbol: str, height: str = "300px") -> None:
        x_scale, y_scale = DateScale(), LinearScale()
        scales = {"x": x_scale, "y": y_scale}
        self.close = Lines(x=_NO_TIMES, y=_NO_VALUES, scales=scales, colors=[COLORS["close"]])
        self.close.stroke_width = 1.6
        self.levels = {
            name: Lines(
                x=_NO_TIMES,
                y=_NO_VALUES,
                scales=scales,
                colors=[COLORS[name]],
                line_style="dashed" if name != "entry" else "dotted",
                stroke_width=1.2,
            )
            for name in ("stop_loss", "take_profit", "entry")
        }
        self.buys, self.sells = _fill_marks(scales)
        self.smc = SmcMarks(scales)
        axes = [
            Axis(scale=x_scale, grid_lines="none"),
            Axis(scale=y_scale, side="left", grid_lines="dashed", tick_format=",.2~f"),
        ]
        self.figure = Figure(
            marks=[
                *self.smc.zones.values(),
                *self.levels.values(),
                self.close,
                *self.smc.breaks.values(),
                self.buys,
                self.sells,
            ],
            axes=axes,
            fig_margin={"top": 10, "bottom": 30, "left": 75, "right": 30},
            padding_y=0.05,
            layout=Layout(width="100%", height=height, min_width="0"),
        )
        self.figure.add_class("botlib-chart")
        self.figure.add_class(f"botlib-chart-{slug(symbol)}")

    def update(self, data: ChartData) -> None:
        """Replace the marks' arrays with `data`'s."""
        with self.close.hold_sync():
            self.close.x, self.close.y = data.x, data.close
        self.smc.update(data.x, data.smc)
        with self.buys.hold_sync():
            self.buys.x, self.buys.y = data.buys_x, data.buys_y
        with self.sells.hold_sync():
            self.sells.x, self.sells.y = data.sells_x, data.sells_y
        for name, mark in self.levels.items():
            with mark.hold_sync():
                mark.x, mark.y = data.level_line(name)
