"""ICT/SMC overlays shaped for the price chart: FVG and order-block zones, BOS/CHoCH points.

The features are recomputed from the chart's own bars (`botlib.features.smc.smc_features` is
pure and causal), so the read-only dashboard needs nothing stored and nothing that writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from botlib.features.smc.summary import smc_features

__all__ = ["SmcChartData", "smc_chart_data", "ZONES", "BREAKS"]

# zone name -> (feature prefix, colour): nearest active zone below (bullish) / above (bearish)
ZONES = {
    "bull_fvg": ("bull_fvg", "#2da44e"),
    "bear_fvg": ("bear_fvg", "#cf222e"),
    "bull_ob": ("bull_ob", "#0969da"),
    "bear_ob": ("bear_ob", "#bc4c00"),
}
BREAKS = {"bos": ("circle", "#6e7781"), "choch": ("diamond", "#8250df")}


@dataclass(frozen=True)
class SmcChartData:
    """Per-bar zone bounds (NaN where no zone is active) and break points, on the chart's x."""

    zones: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    breaks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def at_rows(self, rows: np.ndarray) -> SmcChartData:
        """Keep the zones at `rows` (a merged candle's last bar); breaks keep their real times."""
        zones = {name: (top[rows], bottom[rows]) for name, (top, bottom) in self.zones.items()}
        return SmcChartData(zones, self.breaks)


def smc_chart_data(bars: pd.DataFrame, x: np.ndarray) -> SmcChartData:
    """Shape the SMC overlays of the last `len(x)` bars, drawn at times `x` (empty when too few
    bars); the bars before them only warm the detectors up, so the first drawn bar has zones."""
    if len(x) > len(bars):
        raise ValueError(f"{len(x)} chart times for {len(bars)} bars: one time per drawn bar")
    if len(bars) < 3 or not len(x):
        return SmcChartData()
    features = smc_features(bars).iloc[len(bars) - len(x) :]
    zones = {
        name: (
            features[f"{prefix}_top"].to_numpy(dtype=float),
            features[f"{prefix}_bottom"].to_numpy(dtype=float),
        )
        for name, (prefix, _) in ZONES.items()
    }
    breaks = {}
    for name in BREAKS:
        hit = features[name].to_numpy() != 0
        breaks[name] = (x[hit], features["broken_level"].to_numpy(dtype=float)[hit])
    return SmcChartData(zones, breaks)
