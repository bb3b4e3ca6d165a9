"""The operator's side: audited controls (pause, sizes, stops, limits, close, kill switch),
the operator log, risk-limit overrides and alerts."""
