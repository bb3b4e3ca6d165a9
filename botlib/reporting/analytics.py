"""Performance statistics from equity curves and closed trades (pure functions, no I/O)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

__all__ = [
    "Metrics", "drawdown", "max_drawdown_pct", "sharpe_ratio", "trade_stats", "metrics",
    "periods_per_year",
]  # fmt: skip

_YEAR_SECONDS = 365 * 24 * 3600  # crypto trades every day of the year


@dataclass(frozen=True, slots=True)
class Metrics:
    total_pnl: float
    n_trades: int
    win_rate: float | None
    avg_win: float | None
    avg_loss: float | None
    profit_factor: float | None
    sharpe: float | None
    max_drawdown_pct: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def drawdown(equity: pd.Series) -> pd.Series:
    """Return the fractional distance below the running peak (0 at a new high, negative below).

    >>> drawdown(pd.Series([100.0, 120.0, 90.0, 130.0])).round(2).tolist()
    [0.0, 0.0, -0.25, 0.0]
    """
    if equity.empty:
        return equity.astype(float)
    return equity / equity.cummax() - 1.0


def max_drawdown_pct(equity: pd.Series) -> float:
    """Return the deepest drawdown as a positive percentage (0 when equity never fell).

    >>> max_drawdown_pct(pd.Series([100.0, 120.0, 90.0, 130.0]))
    25.0
    """
    return 0.0 if equity.empty else round(float(-drawdown(equity).min()) * 100, 6)


def sharpe_ratio(equity: pd.Series) -> float | None:
    """Annualised Sharpe of per-sample returns (risk-free 0); None with < 3 samples or no variance.

    Annualised by the samples a year the data actually has (`periods_per_year`): a weekday-only
    series (FX, equities) has ~252 days a year, not 365, and a 24/7 assumption inflates it.
    """
    if len(equity) < 3 or not isinstance(equity.index, pd.DatetimeIndex):
        return None
    returns = equity.pct_change().dropna()
    std = float(returns.std())
    per_year = periods_per_year(equity.index)
    if not std or not math.isfinite(std) or per_year is None:
        return None
    return float(returns.mean()) / std * math.sqrt(per_year)


def periods_per_year(index: pd.DatetimeIndex) -> float | None:
    """How many samples a year the index holds: its returns over the years it spans."""
    span = float(index.asi8[-1] - index.asi8[0]) / 1e9 if len(index) > 1 else 0.0
    return (len(index) - 1) / (span / _YEAR_SECONDS) if span > 0 else None


def trade_stats(pnls: pd.Series) -> dict[str, float | int | None]:
    """Win rate, average win/loss and profit factor from closed trades' realised P&L.

    >>> trade_stats(pd.Series([10.0, -5.0, 20.0]))["profit_factor"]
    6.0
    """
    wins, losses = pnls[pnls > 0], pnls[pnls <= 0]
    n = len(pnls)
    gross_loss = -float(losses.sum())
    return {
        "n_trades": n,
        "win_rate": len(wins) / n if n else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "profit_factor": float(wins.sum()) / gross_loss if gross_loss > 0 else None,
    }


def metrics(equity: pd.Series, closed_pnls: pd.Series, total_pnl: float) -> Metrics:
    """Bundle the statistics the dashboard shows for one equity curve and its closed trades."""
    stats = trade_stats(closed_pnls)
    return Metrics(
        total_pnl=total_pnl,
        n_trades=int(stats["n_trades"] or 0),
        win_rate=stats["win_rate"],
        avg_win=stats["avg_win"],
        avg_loss=stats["avg_loss"],
        profit_factor=stats["profit_factor"],
        sharpe=sharpe_ratio(equity),
        max_drawdown_pct=max_drawdown_pct(equity),
    )
