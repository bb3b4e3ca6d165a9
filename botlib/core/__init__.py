"""The cycle: bars in, features, exits, the analyst, checks, the risk gate, orders, records.

`engine.Engine.run_cycle` is the one path live runs, ticks and backtests share; every part it
needs from outside arrives through `botlib.ports`. Nothing here reads settings or the environment
(but `failpoints`, the tests' crash switch)."""
