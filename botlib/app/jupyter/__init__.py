"""Jupyter on the app side: cycles as papermill notebooks, the locked-down Voila server and its
websocket guard, and what each notebook opens (`pages`)."""
