"""What LLM calls cost: one table of USD prices per 1M tokens, dated, overridable by the user.

Prices change, so each entry says when it was read, and `BOTLIB_LLM_PRICES` (a JSON file) adds
or replaces entries. An unknown model is priced None with a warning: never a made-up number.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from botlib.errors import ConfigError

__all__ = [
    "Price", "PriceTable", "DEFAULT_PRICES", "load_prices", "TRAINING_CUTOFFS", "training_cutoff",
]  # fmt: skip

log = logging.getLogger(__name__)
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-4o-2024-08-06 is priced as gpt-4o


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens; cached input tokens are part of the prompt tokens, billed cheaper."""

    input: float
    cached_input: float
    output: float
    read_on: str  # when the price was read, e.g. "2026-11"

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """Return the USD cost of one call.

        >>> round(Price(2.50, 1.25, 10.00, "2026-11").cost(1000, 200, 400), 6)
        0.004
        """
        fresh = prompt_tokens - cached_tokens
        usd = fresh * self.input + cached_tokens * self.cached_input
        return (usd + completion_tokens * self.output) / 1_000_000


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 1.25, 10.00, "2026-11"),
    "gpt-4o-mini": Price(0.15, 0.075, 0.60, "2026-11"),
}


# The published training-data cutoffs of the default models (OpenAI's model pages): a backtest
# over dates before them may replay prices the model saw. An arena file's `training_cutoff`
# adds or overrides one.
TRAINING_CUTOFFS: dict[str, str] = {"gpt-4o": "2023-10-01", "gpt-4o-mini": "2023-10-01"}


def training_cutoff(model: str) -> str | None:
    """The model's known training cutoff (ISO date), also for a dated name, or None."""
    return TRAINING_CUTOFFS.get(model) or TRAINING_CUTOFFS.get(_DATED.sub("", model))


class PriceTable:
    """Look up a model's price by its name, or by the name without a date suffix."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self._warned: set[str] = set()

    def lookup(self, model: str) -> Price | None:
        return self.prices.get(model) or self.prices.get(_DATED.sub("", model))

    def cost(
        self, model: str, prompt_tokens: int | None, completion_tokens: int | None, cached: int = 0
    ) -> float | None:
        """Return the USD cost, or None (and warn once per model) when the model has no price."""
        price = self.lookup(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning(
                    "no price for model %r: cost recorded as NULL (see BOTLIB_LLM_PRICES)", model
                )
            return None
        if prompt_tokens is None or completion_tokens is None:
            return None
        return price.cost(prompt_tokens, completion_tokens, cached)


def load_prices(path: Path | str | None) -> PriceTable:
    """Return the default table with the entries of the JSON file at `path` added or replaced.

    The file maps model names to `{"input": .., "cached_input": .., "output": .., "read_on": ..}`
    (USD per 1M tokens); `cached_input` defaults to `input`.
    """
    if path is None:
        return PriceTable()
    try:
        raw = json.loads(Path(path).read_text())
        extra = {name: _price(entry) for name, entry in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigError(
            f"BOTLIB_LLM_PRICES {path}: {exc}; expected"
            ' {"model": {"input": 2.5, "cached_input": 1.25, "output": 10, "read_on": "2026-11"}}'
        ) from None
    return PriceTable(DEFAULT_PRICES | extra)


def _price(entry: Mapping[str, object]) -> Price:
    values = {k: float(entry[k]) for k in ("input", "output")}  # type: ignore[arg-type]
    cached = float(entry.get("cached_input", values["input"]))  # type: ignore[arg-type]
    if min(*values.values(), cached) < 0:
        raise ValueError("prices cannot be negative")
    return Price(values["input"], cached, values["output"], str(entry.get("read_on", "user")))
