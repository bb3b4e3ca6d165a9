"""The audit trail of operator changes (`operator_actions`): who changed what, and the outcome.

Every change made from the control notebook is recorded, accepted or not, so a surprise in the
bot's behaviour can be traced to the person and the moment that caused it. `audited` is the one
wrapper `botlib.ops.control` runs every change through: it writes the row and turns a refusal into
`ControlError`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from botlib.clock import iso
from botlib.errors import BotlibError, UnknownSymbolError
from botlib.redact import scrub
from botlib.storage.store import Store

__all__ = ["ControlError", "audited", "default_actor", "log_action", "recent_actions"]

log = logging.getLogger(__name__)


class ControlError(BotlibError):
    """An operator change that was refused; the message names the field and what is allowed."""


def default_actor() -> str:
    """Return the OS user running the kernel (who to blame), or "operator" if it is unknown."""
    try:
        return getpass.getuser() or "operator"
    except Exception:  # no login name in a bare container: still record the action
        return "operator"


def log_action(
    store: Store,
    *,
    actor: str,
    action: str,
    symbol: str | None,
    params: dict[str, Any],
    result: Literal["ok", "rejected"],
    message: str,
    now: datetime,
) -> int:
    """Append one `operator_actions` row; return its id."""
    row = {
        "ts": iso(now),
        "actor": actor,
        "action": action,
        "symbol": symbol,
        "params": scrub(json.dumps(params, default=str)),
        "result": result,
        "message": scrub(message),
    }
    return store.add_operator_action(row)


def recent_actions(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """Return the latest operator actions, newest first (insertion order), `params` decoded."""
    rows = store.operator_actions(limit)
    for row in rows:
        row["params"] = json.loads(row["params"]) if row["params"] else {}
    return rows


def audited(
    store: Store,
    action: str,
    symbol: str | None,
    params: dict[str, Any],
    change: Callable[[], str],
    actor: str | None,
    now: datetime | None,
    *,
    atomic: bool = True,
) -> str:
    """Run `change` and record its outcome; a refusal is recorded, then raised.

    Settings changes are `atomic` (the value and its audit row commit together); broker actions
    are not, as a rollback cannot undo a sale and must not hold the write lock during the call.
    """
    who, when = actor or default_actor(), now or datetime.now(UTC)
    record = partial(log_action, store, actor=who, action=action, symbol=symbol, params=params,
                     now=when)  # fmt: skip
    try:
        with store.transaction() if atomic else contextlib.nullcontext():
            message = change()
            record(result="ok", message=message)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        record(result="rejected", message=reason)
        log.warning("operator %s: %s rejected: %s", who, action, reason)
        if isinstance(exc, ValueError | UnknownSymbolError) and not isinstance(exc, ControlError):
            raise ControlError(reason) from exc
        raise
    log.info("operator %s: %s", who, message)
    return message
