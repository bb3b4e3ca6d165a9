"""Account-wide risk limits: defaults from settings, overridden from the control notebook.

The operator's values live in the `bot_settings` table, so a change made in JupyterLab is picked
up by the next tick without restarting anything; model output never reaches this module.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from botlib.app.config import Settings, allowed_range
from botlib.clock import iso
from botlib.storage.store import Store

__all__ = ["Limits", "load_limits", "save_limits", "limits_from_settings"]

_PREFIX = "limits."


class Limits(BaseModel):
    """The account's risk limits (percentages of equity; the LLM budget in USD per UTC day).

    Strict and finite: lax parsing let `set_limits(max_position_pct="5")` and `True` (as 1 %)
    through (tests/test_inputs.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    max_position_pct: float = Field(25.0, gt=0, le=100)  # cap on one entry, % of equity
    max_daily_loss_pct: float = Field(5.0, gt=0, le=100)  # below it: HALTED, exits only
    max_drawdown_pct: float = Field(20.0, gt=0, le=100)  # below the peak: HALTED, exits only
    llm_budget_usd: float = Field(5.0, ge=0, le=10_000)


def limits_from_settings(settings: Settings) -> Limits:
    """Return the limits configured in the environment (before any operator change)."""
    return Limits(
        max_position_pct=settings.max_position_pct,
        max_daily_loss_pct=settings.max_daily_loss_pct,
        max_drawdown_pct=settings.max_drawdown_pct,
        llm_budget_usd=settings.max_llm_usd_per_day,
    )


def load_limits(store: Store, settings: Settings | Limits) -> Limits:
    """Return the limits in force: `settings`' values with the operator's overrides on top.

    Works on a read-only store (the dashboard shows the limits it is judged against).
    """
    base = settings if isinstance(settings, Limits) else limits_from_settings(settings)
    rows = store.rows("SELECT key, value FROM bot_settings WHERE key LIKE ?", [_PREFIX + "%"])
    overrides = {
        row["key"][len(_PREFIX) :]: json.loads(row["value"])
        for row in rows
        if row["key"][len(_PREFIX) :] in Limits.model_fields
    }
    return base.model_copy(update=overrides) if overrides else base


def save_limits(store: Store, settings: Settings | Limits, now: datetime, **changes: Any) -> Limits:
    """Validate `changes` against the limits in force and store them; return the new limits.

    Raise ValueError (nothing is written) naming an unknown limit and the known ones, or the
    field, its allowed range and the value refused.
    """
    unknown = sorted(set(changes) - set(Limits.model_fields))
    if unknown:
        known = ", ".join(Limits.model_fields)
        raise ValueError(f"unknown risk limit(s): {', '.join(unknown)}; known: {known}")
    proposed = load_limits(store, settings).model_dump() | changes
    try:
        updated = Limits.model_validate(proposed)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        bounds = allowed_range(Limits.model_fields[name])
        raise ValueError(
            f"{name} must be a number {bounds} (got {proposed[name]!r}): {exc.errors()[0]['msg']}"
        ) from None
    rows = [
        {"key": _PREFIX + name, "value": json.dumps(getattr(updated, name)), "updated_at": iso(now)}
        for name in changes
    ]
    with store.transaction():
        store.db.table("bot_settings").upsert_all(rows, pk="key")
    return updated
