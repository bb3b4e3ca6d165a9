"""Analysts: turn a market context into a `Decision` (types in `botlib.ports`).

`rules` (offline, deterministic) and `openai` (any OpenAI-compatible endpoint, behind the daily
spend guard of `budget`), with the prompt, the strict output schemas, one chat call with its
audit facts (`llm`) and the dated price table (`pricing`).
"""
