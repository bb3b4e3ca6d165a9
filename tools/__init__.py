"""Benchmarks, the soak script and the books' invariants: run from a checkout (`make bench`,
`make soak`), never shipped in the wheel (they use dev-only packages: psutil,
smartmoneyconcepts)."""
