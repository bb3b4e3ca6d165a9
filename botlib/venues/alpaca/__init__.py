"""Alpaca through the real alpaca-py SDK: symbols, bounded HTTP, market data and the broker.

alpaca-py imports `websockets.legacy` (for its streams, unused here), which warns at import:
the SDK is imported once, here, with that one warning silenced.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    import alpaca.data.historical
    import alpaca.trading.client  # noqa: F401
