"""Causal tracking of price zones (FVGs, order blocks): mitigation and the nearest active ones.

One sequential pass (numba), O(n * capacity): at bar i, zones created before i are first tested
for mitigation by bar i, then the zone created on bar i (if any) joins the active set, then the
nearest active bullish zone (highest top) and bearish zone (lowest bottom) are reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

__all__ = ["track_zones", "zone_frame", "TOUCH", "FILL"]

TOUCH = 0  # mitigated when price trades into the zone (bullish: low <= top)
FILL = 1  # mitigated when price fills the zone (bullish: low <= bottom)


@njit(cache=True)
def track_zones(  # pragma: no cover - compiled
    direction: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    rule: int,
    capacity: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(direction)
    mitigated = np.zeros(n, dtype=np.int64)
    state = np.full((4, n), np.nan)  # bull top, bull bottom, bear top, bear bottom
    z_dir = np.zeros(capacity, dtype=np.int64)
    z_top = np.zeros(capacity)
    z_bot = np.zeros(capacity)
    slot = 0
    for i in range(n):
        for k in range(capacity):
            if z_dir[k] == 1:
                edge = z_top[k] if rule == TOUCH else z_bot[k]
                if low[i] <= edge:
                    z_dir[k] = 0
                    mitigated[i] += 1
            elif z_dir[k] == -1:
                edge = z_bot[k] if rule == TOUCH else z_top[k]
                if high[i] >= edge:
                    z_dir[k] = 0
                    mitigated[i] += 1
        if direction[i] != 0:
            z_dir[slot], z_top[slot], z_bot[slot] = direction[i], top[i], bottom[i]
            slot = (slot + 1) % capacity  # the oldest zone makes room
        for k in range(capacity):
            if z_dir[k] == 1 and (np.isnan(state[0, i]) or z_top[k] > state[0, i]):
                state[0, i], state[1, i] = z_top[k], z_bot[k]
            elif z_dir[k] == -1 and (np.isnan(state[3, i]) or z_bot[k] < state[3, i]):
                state[2, i], state[3, i] = z_top[k], z_bot[k]
    return mitigated, state[0], state[1], state[2], state[3]


def zone_frame(
    name: str,
    direction: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    rule: int,
    capacity: int,
    index: pd.Index,
) -> pd.DataFrame:
    """Columns `<name>`, `<name>_top/_bottom/_mitigated` and the nearest active zones
    `bull_<name>_top/_bottom`, `bear_<name>_top/_bottom`, from zones created per bar."""
    mitigated, bull_top, bull_bottom, bear_top, bear_bottom = track_zones(
        direction, top, bottom, high, low, rule, capacity
    )
    return pd.DataFrame(
        {
            name: direction,
            f"{name}_top": top,
            f"{name}_bottom": bottom,
            f"{name}_mitigated": mitigated,
            f"bull_{name}_top": bull_top,
            f"bull_{name}_bottom": bull_bottom,
            f"bear_{name}_top": bear_top,
            f"bear_{name}_bottom": bear_bottom,
        },
        index=index,
    )
