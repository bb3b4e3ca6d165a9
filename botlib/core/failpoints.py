"""Named crash points, so tests can prove what a cycle killed at each stage leaves behind.

`BOTLIB_FAILPOINTS=order.after_submit` (comma-separated names) makes the process SIGKILL
itself when it reaches that point: no `finally`, no atexit, no flush, exactly what a power
cut or the OOM killer does. Unset (always, outside the reliability tests) it costs one
environment lookup per point. The points, in cycle order:

- `cycle.after_decision`: the analyst's decision is logged, nothing sent yet.
- `order.before_submit`: the order intent is written, the broker has not been called.
- `order.after_submit`: the broker answered (the order exists there), nothing booked yet.
- `entry.after_fill`: an entry's fill is booked, its protective stop is not placed yet.
- `order.after_cancel`: a resting order's cancel was sent (a stop being replaced, or
  cancelled for a take-profit), nothing placed or sold after it yet.
- `cycle.before_finish`: fills and position are booked, the cycle row is not finished.
"""

from __future__ import annotations

import logging
import os
import signal

__all__ = ["POINTS", "failpoint"]

log = logging.getLogger(__name__)

POINTS = (
    "cycle.after_decision",
    "order.before_submit",
    "order.after_submit",
    "entry.after_fill",
    "order.after_cancel",
    "cycle.before_finish",
)
ENV = "BOTLIB_FAILPOINTS"


def failpoint(name: str) -> None:
    """Kill this process now if `name` is listed in $BOTLIB_FAILPOINTS."""
    active = os.environ.get(ENV)
    if active and name in active.split(","):
        log.critical("failpoint %s: killing process %d", name, os.getpid())
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
