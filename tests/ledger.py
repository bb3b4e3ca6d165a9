"""Tallies what the reliability tests exercised; conftest prints the totals after the run.

docs/reliability.md quotes these figures, so they come from a real run, not from prose.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["TALLY", "tally"]

TALLY: Counter[str] = Counter()


def tally(**counts: int) -> None:
    """Add to the run's totals, e.g. `tally(cycles_run=3, faults_injected=1, orders_checked=1)`.

    Keys in use: cycles_run, faults_injected, orders_checked, duplicates_found, rows_lost,
    protective_stops_checked, fuzz_cases, canary_checks.
    """
    TALLY.update(counts)
