"""An arena file's analyst, built for live cycles: a shadow's, or a shadow promoted to live.

Research runs build theirs through `run_backtest` (the replay cache decides who answers); a live
or shadow cycle calls the model, behind the daily budget's guard, and signs every decision with
the analyst's arena name (`gpt4o`, not `openai`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botlib.analysts.baselines import BuyAndHold, Flat, SmaCross
from botlib.analysts.factory import build_analyst
from botlib.analysts.rules import RulesAnalyst
from botlib.ports import Analyst, Clock
from botlib.storage.store import Store

__all__ = ["arena_analyst", "offline_analyst"]


def offline_analyst(spec: Any) -> Analyst | None:
    """The analyst of a spec that needs no model (rules and the baselines), else None."""
    if spec.kind == "rules":
        return RulesAnalyst()
    if spec.kind == "buy_and_hold":
        return BuyAndHold()
    if spec.kind == "flat":
        return Flat()
    if spec.kind == "sma_cross":
        return SmaCross(spec.fast, spec.slow)
    return None


def arena_analyst(
    name: str, spec: Any, store: Store, clock: Clock, *, environ: Mapping[str, str],
    budget_usd: float, spent: Callable[[datetime], float] | None = None,
) -> Analyst:  # fmt: skip
    """The spec's analyst; a model's calls are logged and priced in `store`, and its guard
    checks `spent` (default: `store`'s spend today) against `budget_usd`."""
    built = offline_analyst(spec)
    if built is None:
        llm = spec.llm_config(environ, "off", budget_usd)
        built = build_analyst("openai", store, clock, llm, spent=spent)
    part: Any = built
    while part is not None:  # a model's guard, its wrappers and the model all sign results
        part.name = name
        part = getattr(part, "inner", None)
    return built
