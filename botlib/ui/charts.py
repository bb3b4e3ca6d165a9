"""One asset's bqplot chart: candles with overlays (indicators, ICT/SMC zones and breaks) over a
volume strip, updated in place."""

from __future__ import annotations

import warnings

import numpy as np
from ipywidgets import Layout, VBox

with warnings.catch_warnings():
    # bqscales 0.3 (under bqplot) passes metadata to a traitlets constructor at import time;
    # silenced here so `python -W error` and pytest's warnings-as-errors can import botlib.ui.
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import (
        OHLC,
        Axis,
        Bars,
        ColorScale,
        DateScale,
        Figure,
        Label,
        LinearScale,
        Lines,
        Scatter,
    )

from botlib.ui.shaping.charts import OVERLAYS, RESTING_KINDS, ChartData
from botlib.ui.shaping.smc import BREAKS, ZONES, SmcChartData
from botlib.ui.shaping.text import slug

__all__ = ["PriceChart", "SmcMarks", "COLORS"]

COLORS = {
    "up": "#26a69a",
    "down": "#ef5350",
    "close": "#57606a",
    "sma_20": "#bf8700",
    "sma_50": "#8250df",
    "bb_upper": "#57606a",
    "bb_lower": "#57606a",
    "buy": "#1a7f37",
    "sell": "#cf222e",
    "stop_loss": "#cf222e",
    "take_profit": "#1a7f37",
    "entry": "#8c959f",
    "resting_stop": "#bc4c00",  # orders resting at the venue: orange, beside the red stop-loss
    "resting_stop_limit": "#fb8f44",
    "resting_limit": "#0969da",
}
# line style and width of each kind of resting order's level
_RESTING_STYLES = {
    "resting_stop": ("solid", 1.6),
    "resting_stop_limit": ("dash_dotted", 1.2),
    "resting_limit": ("dash_dotted", 1.6),
}
_NO_TIMES = np.array([], dtype="datetime64[ms]")
_NO_VALUES = np.array([], dtype=float)
# equal left/right margins keep the price and volume figures' x axes aligned
_MARGIN = {"left": 75, "right": 30}


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
            default_size=110,
        )

    return marks("buy", "triangle-up"), marks("sell", "triangle-down")


def _line(scales: dict[str, object], name: str, **style: object) -> Lines:
    return Lines(x=_NO_TIMES, y=_NO_VALUES, scales=scales, colors=[COLORS[name]], **style)


def _overlays(scales: dict[str, object]) -> dict[str, Lines]:
    """Build the SMA and Bollinger lines (the bands thinner and dashed, behind the SMAs)."""
    return {
        name: _line(
            scales,
            name,
            stroke_width=1.0 if name.startswith("bb_") else 1.4,
            line_style="dashed" if name.startswith("bb_") else "solid",
            opacities=[0.6 if name.startswith("bb_") else 0.9],
        )
        for name in OVERLAYS
    }


def _volume_figure(x_scale: DateScale, height: str) -> tuple[Figure, Bars]:
    """Build the volume strip under the candles, on the same date scale (so they line up)."""
    y_scale = LinearScale(min=0.0)
    colors = ColorScale(colors=[COLORS["down"], COLORS["up"]], min=0.0, max=1.0)
    bars = Bars(
        x=_NO_TIMES,
        y=_NO_VALUES,
        color=_NO_VALUES,
        scales={"x": x_scale, "y": y_scale, "color": colors},
        padding=0.2,
        opacities=[0.55],
    )
    axes = [
        Axis(scale=x_scale, grid_lines="none"),
        Axis(scale=y_scale, side="left", tick_format=".2~s", num_ticks=2),
    ]
    figure = Figure(
        marks=[bars],
        axes=axes,
        fig_margin={"top": 8, "bottom": 28, **_MARGIN},
        padding_y=0.0,  # volume starts at 0 on the axis
        layout=Layout(width="100%", height=height, min_width="0"),
    )
    figure.add_class("botlib-volume")
    return figure, bars


class SmcMarks:
    """The bqplot marks for the overlays, created once and updated in place."""

    def __init__(self, scales: dict[str, object]) -> None:
        self.zones = {
            name: Lines(
                x=_NO_TIMES,
                y=np.empty((2, 0)),
                scales=scales,
                colors=[color, color],
                fill="between",
                fill_colors=[color],
                fill_opacities=[0.12],
                stroke_width=0.6,
                opacities=[0.5, 0.5],
            )
            for name, (_, color) in ZONES.items()
        }
        self.breaks = {
            name: Scatter(
                x=_NO_TIMES,
                y=_NO_VALUES,
                scales=scales,
                marker=marker,
                colors=[color],
                default_size=36,
            )
            for name, (marker, color) in BREAKS.items()
        }

    @property
    def marks(self) -> list[Lines | Scatter]:
        return [*self.zones.values(), *self.breaks.values()]

    def update(self, x: np.ndarray, data: SmcChartData) -> None:
        for name, mark in self.zones.items():
            top, bottom = data.zones.get(name, (_NO_VALUES, _NO_VALUES))
            # bqplot places a curve's label group at its last point: a trailing NaN there makes
            # an invalid SVG transform, so the arrays end at the last bar with an active zone
            end = int(np.flatnonzero(np.isfinite(top))[-1]) + 1 if np.isfinite(top).any() else 0
            with mark.hold_sync():
                mark.x = x[:end] if end else _NO_TIMES
                mark.y = np.vstack([top[:end], bottom[:end]]) if end else np.empty((2, 0))
        for name, scatter in self.breaks.items():
            bx, by = data.breaks.get(name, (_NO_TIMES, _NO_VALUES))
            with scatter.hold_sync():
                scatter.x, scatter.y = bx, by


def _resting_marks(scales: dict[str, object]) -> tuple[dict[str, Lines], dict[str, Label]]:
    """Build a line mark (a row of `y` per order) and a label mark per kind of resting order.

    The labels are a mark of their own, just above each level's left end: a `Lines` label
    would sit on its line's last point, at the plot's right edge, struck through by the line.
    """
    lines, labels = {}, {}
    for kind in RESTING_KINDS:
        style, width = _RESTING_STYLES[kind]
        lines[kind] = _line(scales, kind, line_style=style, stroke_width=width)
        labels[kind] = Label(
            x=_NO_TIMES,
            y=_NO_VALUES,
            text=np.array([], dtype=str),
            scales=scales,
            colors=[COLORS[kind]],
            default_size=11,
            font_weight="normal",
            x_offset=4,
            y_offset=-4,
        )
    return lines, labels


class PriceChart:
    """Candles, SMA/Bollinger overlays, SMC zones, fills, position levels and the orders resting
    at the venue (labelled levels) of one asset, over a volume strip; `widget` holds both figures.

    `update` only assigns new arrays to the existing marks (one message per mark, via
    `hold_sync`), so the browser redraws without rebuilding the figures. `close` is a faint
    line through the candles' closes: it keeps the last price readable when candles are thin.
    """

    def __init__(self, symbol: str, height: str = "300px", volume_height: str = "90px") -> None:
        x_scale, y_scale = DateScale(), LinearScale()
        scales = {"x": x_scale, "y": y_scale}
        self.candles = OHLC(
            x=_NO_TIMES,
            y=np.empty((0, 4)),
            scales=scales,
            marker="candle",
            colors=[COLORS["up"], COLORS["down"]],
            stroke=COLORS["close"],
            stroke_width=0.8,
        )
        self.close = _line(scales, "close", stroke_width=1.0, opacities=[0.35])
        self.overlays = _overlays(scales)
        self.levels = {
            name: _line(
                scales, name, line_style="dashed" if name != "entry" else "dotted", stroke_width=1.2
            )
            for name in ("stop_loss", "take_profit", "entry")
        }
        self.resting, self.resting_labels = _resting_marks(scales)
        self.buys, self.sells = _fill_marks(scales)
        self.smc = SmcMarks(scales)
        self.figure = Figure(
            marks=[
                *self.smc.zones.values(),
                *self.levels.values(),
                *self.resting.values(),
                self.candles,
                self.close,
                *self.overlays.values(),
                *self.smc.breaks.values(),
                self.buys,
                self.sells,
                *self.resting_labels.values(),  # on top: text over the candles stays readable
            ],
            axes=[
                Axis(scale=x_scale, grid_lines="none", visible=False),  # dates: under the volume
                Axis(scale=y_scale, side="left", grid_lines="dashed", tick_format=",.2~f"),
            ],
            fig_margin={"top": 10, "bottom": 6, **_MARGIN},
            padding_y=0.05,
            layout=Layout(width="100%", height=height, min_width="0"),
        )
        self.figure.add_class("botlib-chart")
        self.figure.add_class(f"botlib-chart-{slug(symbol)}")
        self.volume_figure, self.volume = _volume_figure(x_scale, volume_height)
        self.widget = VBox(
            [self.figure, self.volume_figure], layout=Layout(flex="3 1 0", min_width="0")
        )
        self.widget.add_class("botlib-chart-box")

    def update(self, data: ChartData) -> None:
        """Replace the marks' arrays with `data`'s."""
        with self.candles.hold_sync():
            self.candles.x, self.candles.y = data.x, data.ohlc
        with self.close.hold_sync():
            self.close.x, self.close.y = data.x, data.close
        with self.volume.hold_sync():
            self.volume.x, self.volume.y, self.volume.color = data.x, data.volume, data.rising
        for name, mark in self.overlays.items():
            with mark.hold_sync():
                mark.x, mark.y = data.overlay_line(name)
        self.smc.update(data.x, data.smc)
        with self.buys.hold_sync():
            self.buys.x, self.buys.y = data.buys_x, data.buys_y
        with self.sells.hold_sync():
            self.sells.x, self.sells.y = data.sells_x, data.sells_y
        for name, mark in self.levels.items():
            with mark.hold_sync():
                mark.x, mark.y = data.level_line(name)
        for kind, mark in self.resting.items():
            with mark.hold_sync():
                mark.x, mark.y = data.resting_lines(kind)
        for kind, label in self.resting_labels.items():
            x, y, text = data.resting_labels(kind)
            with label.hold_sync():
                label.x, label.y, label.text = x, y, np.array(text, dtype=str)
