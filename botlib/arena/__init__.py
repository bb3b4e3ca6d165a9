"""The arena: several analysts on the same market, ranked net of fees and LLM spend.

`config` (the named analysts of one settings file, validated), `research` (every analyst over
the same history, one engine path each, ranked after LLM spend), `shadows` (the live arena:
analysts deciding beside the live one, in their own books) and `stats` (block-bootstrap
confidence intervals: is a lead more than luck?).
"""
