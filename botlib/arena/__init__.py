"""The arena: several analysts on the same market, ranked net of fees and LLM spend.

`config` (the named analysts of one settings file, validated), `research` (every analyst over
the same history, one engine path each), `leaderboard` (the ranking after LLM spend) and
`stats` (block-bootstrap confidence intervals: is a lead more than luck?).
"""
