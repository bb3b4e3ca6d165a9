"""The arena's pages: the research run's report (`report`) and the dashboard's Arena tab (`tab`:
the live analyst beside its shadows)."""
