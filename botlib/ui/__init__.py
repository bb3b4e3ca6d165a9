"""ipywidgets + bqplot pages: the read-only dashboard, the AI-log explorer, the control panel and
the backtest report. Widgets take explicit arguments; `botlib.app.jupyter.pages` builds them
from settings for the notebooks. Pure shaping (numbers, arrays, HTML) lives in `shaping/`."""
