"""The read side: what the dashboard, the CLI and the notebooks show, only ever reading
(`Store(path, read_only=True)` works everywhere here)."""
