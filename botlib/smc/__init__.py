"""ICT / smart-money-concepts features: pure, vectorised and causal (row i uses bars <= i)."""

from botlib.smc._input import check_ohlc
from botlib.smc.pivots import swings

__all__ = ["check_ohlc", "swings"]
