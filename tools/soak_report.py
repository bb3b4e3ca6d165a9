"""The soak script's report: what ran, what failed, how memory and the database grew."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SoakReport"]


@dataclass
class SoakReport:
    """What a soak did and how memory, the database and timings moved."""

    db: str
    mode: str  # papermill | in-process
    assets: int
    minutes: float
    sim_start: str
    sim_end: str = ""
    ticks: int = 0
    ticks_locked_out: int = 0  # another tick held the lock
    tick_errors: int = 0  # ticks that raised (the tick, not one of its cycles, failed)
    cycles_ok: int = 0
    cycles_failed: int = 0
    cycles_skipped: int = 0
    first_tick_cycles: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    lock_errors_logged: int = 0
    lock_errors_in_cycles: int = 0
    rss_start_mb: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    db_start_bytes: int = 0
    db_warm_bytes: int = 0
    db_end_bytes: int = 0
    wal_end_bytes: int = 0  # of which the -wal file (checkpoints reuse it; it does not shrink)
    wall_s: float = 0.0
    first_tick_s: float = 0.0
    tick_mean_s: float = 0.0  # after the first tick
    tick_max_s: float = 0.0
    cycle_mean_s: float = 0.0  # tick time per cycle, after the first tick
    reads: int = 0
    reads_overlapping: int = 0
    read_max_s: float = 0.0
    read_problems: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def cycles(self) -> int:
        return self.cycles_ok + self.cycles_failed + self.cycles_skipped

    @property
    def lock_errors(self) -> int:
        return self.lock_errors_logged + self.lock_errors_in_cycles

    @property
    def rss_growth_mb_per_100_cycles(self) -> float:
        later = self.cycles - self.first_tick_cycles
        return (self.rss_end_mb - self.rss_warm_mb) / later * 100 if later else 0.0

    @property
    def db_growth_bytes_per_cycle(self) -> float:
        later = self.cycles - self.first_tick_cycles
        return (self.db_end_bytes - self.db_warm_bytes) / later if later else 0.0

    @property
    def passed(self) -> bool:
        return not (
            self.cycles_failed or self.tick_errors or self.lock_errors or self.read_problems
        )

    def to_dict(self) -> dict[str, Any]:
        derived = ("cycles", "lock_errors", "rss_growth_mb_per_100_cycles",
                   "db_growth_bytes_per_cycle", "passed")  # fmt: skip
        return asdict(self) | {name: getattr(self, name) for name in derived}

    def lines(self) -> list[str]:
        mb = 1024 * 1024
        lines = [
            f"soak: {self.ticks} ticks of {self.assets} assets ({self.mode}) in {self.wall_s:.0f} s"
            f" on {self.db}; simulated {self.sim_start} .. {self.sim_end}",
            f"cycles: {self.cycles} ({self.cycles_ok} ok, {self.cycles_failed} failed,"
            f" {self.cycles_skipped} skipped); ticks locked out: {self.ticks_locked_out},"
            f" ticks that raised: {self.tick_errors}",
            f"lock errors: {self.lock_errors} ({self.lock_errors_logged} logged,"
            f" {self.lock_errors_in_cycles} in cycles)",
            f"memory (RSS): {self.rss_start_mb:.0f} MB at start, {self.rss_warm_mb:.0f} MB after"
            f" the first tick, {self.rss_end_mb:.0f} MB at the end:"
            f" {self.rss_growth_mb_per_100_cycles:+.2f} MB per 100 cycles"
            + (
                " (this process; each cycle's kernel is a child that exits)"
                if self.mode == "papermill"
                else ""
            ),
            f"database (+wal): {self.db_start_bytes / mb:.1f} MB at start,"
            f" {self.db_warm_bytes / mb:.1f} MB after the first tick, {self.db_end_bytes / mb:.1f}"
            f" MB at the end ({self.wal_end_bytes / mb:.1f} MB of it -wal):"
            f" {self.db_growth_bytes_per_cycle / 1024:+.1f} KB per cycle",
            f"time: first tick {self.first_tick_s:.2f} s, then {self.tick_mean_s:.2f} s per tick"
            f" (max {self.tick_max_s:.2f} s), {self.cycle_mean_s * 1000:.0f} ms per cycle",
        ]
        if self.reads:
            lines.append(
                f"reader: {self.reads} reads ({self.reads_overlapping} mid-cycle), slowest"
                f" {self.read_max_s * 1000:.0f} ms, {len(self.read_problems)} problems"
            )
        lines += [f"failed: {f['symbol']} {f['cycle_id']}: {f['reason']}" for f in self.failures]
        lines += [f"read problem: {p}" for p in self.read_problems]
        lines.append("PASS" if self.passed else "FAIL")
        return lines
