"""ICT / smart-money-concepts features: pure, vectorised and causal (row i uses bars <= i)."""

from botlib.smc._input import check_ohlc
from botlib.smc.features import smc_features, summary
from botlib.smc.gaps import fair_value_gaps
from botlib.smc.liquidity import causal_atr, liquidity
from botlib.smc.pivots import swings
from botlib.smc.sessions import asian_range, killzones
from botlib.smc.structure import market_structure, order_blocks, premium_discount

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
