"""ICT / smart-money-concepts features: pure, vectorised and causal (row i uses bars <= i)."""

from botlib.features.smc._input import check_ohlc
from botlib.features.smc.gaps import fair_value_gaps
from botlib.features.smc.liquidity import causal_atr, liquidity
from botlib.features.smc.pivots import swings
from botlib.features.smc.sessions import asian_range, killzones
from botlib.features.smc.structure import market_structure, order_blocks, premium_discount
from botlib.features.smc.summary import smc_features, summary

__all__ = [
    "asian_range",
    "causal_atr",
    "check_ohlc",
    "fair_value_gaps",
    "killzones",
    "liquidity",
    "market_structure",
    "order_blocks",
    "premium_discount",
    "smc_features",
    "summary",
    "swings",
]
