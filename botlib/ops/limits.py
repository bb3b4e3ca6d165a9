"""The operator's risk-limit overrides: stored in `bot_settings`, laid over the environment's.

A change made in the control notebook is picked up by the next tick without restarting
anything; model output never reaches this module. The limits themselves are
`botlib.core.risk.RiskLimits` (one type, one set of defaults).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from botlib.core.risk import RiskLimits
from botlib.models import allowed_range
from botlib.storage.store import Store

__all__ = ["load_limits", "save_limits"]

_PREFIX = "limits."


def load_limits(store: Store, base: RiskLimits) -> RiskLimits:
    """Return the limits in force: `base` (the environment's) with the operator's overrides.

    Works on a read-only store (the dashboard shows the limits it is judged against).
    """
    overrides = {
        name: value
        for name, value in store.settings_with_prefix(_PREFIX).items()
        if name in RiskLimits.model_fields
    }
    return base.model_copy(update=overrides) if overrides else base


def save_limits(store: Store, base: RiskLimits, now: datetime, **changes: Any) -> RiskLimits:
    """Validate `changes` against the limits in force and store them; return the new limits.

    Raise ValueError (nothing is written) naming an unknown limit and the known ones, or the
    field, its allowed range and the value refused.
    """
    unknown = sorted(set(changes) - set(RiskLimits.model_fields))
    if unknown:
        known = ", ".join(RiskLimits.model_fields)
        raise ValueError(f"unknown risk limit(s): {', '.join(unknown)}; known: {known}")
    proposed = load_limits(store, base).model_dump() | changes
    try:
        updated = RiskLimits.model_validate(proposed)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        bounds = allowed_range(RiskLimits.model_fields[name])
        raise ValueError(
            f"{name} must be a number {bounds} (got {proposed[name]!r}): {exc.errors()[0]['msg']}"
        ) from None
    store.put_settings(_PREFIX, {name: getattr(updated, name) for name in changes}, now)
    return updated
