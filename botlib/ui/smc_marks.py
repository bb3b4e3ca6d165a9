"""The bqplot marks for the ICT/SMC overlays (data shaped in `botlib.ui.smc_shaping`)."""

from __future__ import annotations

import warnings

import numpy as np

from botlib.ui.smc_shaping import BREAKS, ZONES, SmcChartData

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", "metadata .* was set from the constructor", DeprecationWarning
    )
    from bqplot import Lines, Scatter

__all__ = ["SmcMarks"]

_EMPTY_T = np.array([], dtype="datetime64[ms]")
_EMPTY = np.array([], dtype=float)


class SmcMarks:
    """The bqplot marks for the overlays, created once and updated in place."""

    def __init__(self, scales: dict[str, object]) -> None:
        self.zones = {
            name: Lines(
                x=_EMPTY_T,
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
                x=_EMPTY_T, y=_EMPTY, scales=scales, marker=marker, colors=[color], default_size=36
            )
            for name, (marker, color) in BREAKS.items()
        }

    @property
    def marks(self) -> list[Lines | Scatter]:
        return [*self.zones.values(), *self.breaks.values()]

    def update(self, x: np.ndarray, data: SmcChartData) -> None:
        for name, mark in self.zones.items():
            top, bottom = data.zones.get(name, (_EMPTY, _EMPTY))
            # bqplot places a curve's label group at its last point: a trailing NaN there makes
            # an invalid SVG transform, so the arrays end at the last bar with an active zone
            end = int(np.flatnonzero(np.isfinite(top))[-1]) + 1 if np.isfinite(top).any() else 0
            with mark.hold_sync():
                mark.x = x[:end] if end else _EMPTY_T
                mark.y = np.vstack([top[:end], bottom[:end]]) if end else np.empty((2, 0))
        for name, scatter in self.breaks.items():
            bx, by = data.breaks.get(name, (_EMPTY_T, _EMPTY))
            with scatter.hold_sync():
                scatter.x, scatter.y = bx, by
