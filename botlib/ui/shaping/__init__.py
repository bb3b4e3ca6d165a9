"""Pure shaping for the pages: labels and formats, chart arrays, AI-log summaries, SMC overlays
and downsampling. No widgets, so every number and string is unit-tested as plain Python."""
