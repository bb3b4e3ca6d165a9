"""SQLite through sqlite-utils: the `Store`, its explicit migrations, and every SQL statement
that writes. Reads for people (dashboard, exports) live in `botlib.reporting`."""
