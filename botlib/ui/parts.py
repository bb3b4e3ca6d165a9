"""What every page shares: the stylesheet (shipped inside the widget tree: Voila serves no files
of ours) and small widget builders for the header, panels and sections."""

from __future__ import annotations

import ipywidgets as widgets

from botlib.ui.shaping.text import NONE

__all__ = ["CSS", "stat", "value_widgets"]

CSS = """<style>
.botlib-dashboard { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; max-width: 1500px; gap: 8px; }
.botlib-dashboard h2, .botlib-dashboard h3 { margin: 0; line-height: 1.3; }
.botlib-top { align-items: center; gap: 24px; flex-wrap: wrap; }
.botlib-header { gap: 28px; flex-wrap: wrap; background: #f6f8fa; border: 1px solid #d0d7de;
  border-radius: 6px; padding: 6px 14px; }
.botlib-stat { min-width: 0; gap: 0; margin: 0; }
.botlib-stat .widget-html { margin: 0; height: auto; }
.botlib-stat .widget-html-content { line-height: 1.35; height: auto; }
.botlib-caption { font-size: 11px; color: #59636e; text-transform: uppercase;
  letter-spacing: 0.04em; }
.botlib-value { font-size: 15px; font-weight: 600; font-variant-numeric: tabular-nums; }
.botlib-gain { color: #1a7f37; }
.botlib-loss { color: #cf222e; }
.botlib-action-buy { color: #1a7f37; }
.botlib-action-sell { color: #cf222e; }
.botlib-action-hold { color: #59636e; }
.botlib-status { font-size: 12px; color: #59636e; margin: 0; }
.botlib-status-error { color: #9a6700; background: #fff8c5; border: 1px solid #d4a72c;
  border-radius: 6px; padding: 2px 8px; font-weight: 600; }
.botlib-panel { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px;
  margin: 0 0 12px 0; gap: 6px; }
.botlib-panel > .widget-hbox:first-child { align-items: baseline; gap: 16px; }
.botlib-legend { font-size: 12px; }
.botlib-legend span { margin-right: 12px; }
.botlib-body { gap: 12px; align-items: flex-start; }
.botlib-body > .bqplot { flex: 3 1 0; min-width: 0; }
.botlib-stats { flex: 2 1 0; min-width: 260px; grid-template-columns: repeat(2, minmax(0, 1fr));
  gap: 10px 16px; align-content: start; padding-top: 6px; }
.botlib-wide { grid-template-columns: minmax(0, 1fr) minmax(0, 2fr); gap: 6px 16px;
  border-top: 1px solid #eaeef2; padding-top: 6px; }
.botlib-wide .widget-html-content { white-space: normal; overflow-wrap: anywhere; }
.botlib-wide .botlib-value { font-size: 13px; font-weight: 500; }
.botlib-mode-live { color: #cf222e; font-weight: 700; }
.botlib-banner { width: 100%; box-sizing: border-box; background: #cf222e; color: #ffffff;
  border-radius: 6px; padding: 8px 14px; font-size: 14px; margin: 0; }
.botlib-banner .widget-html-content { white-space: normal; color: #ffffff; }
.botlib-lights { gap: 18px; flex-wrap: wrap; align-items: baseline; font-size: 13px; }
.botlib-light { cursor: help; }
.botlib-state-ok .botlib-light { color: #1a7f37; }
.botlib-state-failed .botlib-light { color: #cf222e; font-weight: 600; }
.botlib-state-stale .botlib-light, .botlib-state-late { color: #9a6700; font-weight: 600; }
.botlib-state-paused .botlib-light, .botlib-state-waiting .botlib-light,
  .botlib-state-none { color: #8c959f; }
.botlib-light-box .widget-html-content { white-space: normal; max-width: 480px; }
.botlib-heartbeat .widget-html-content { white-space: normal; }
.botlib-performance, .botlib-activity { border: 1px solid #d0d7de; border-radius: 6px;
  padding: 10px 12px; margin: 0 0 12px 0; gap: 6px; }
.botlib-performance-charts { gap: 12px; }
.botlib-performance-charts > .bqplot { flex: 1 1 0; min-width: 0; }
.botlib-metrics, .botlib-feed { border-collapse: collapse; font-size: 12px; width: 100%;
  font-variant-numeric: tabular-nums; }
.botlib-metrics th, .botlib-metrics td, .botlib-feed th, .botlib-feed td { padding: 3px 8px;
  border-bottom: 1px solid #eaeef2; text-align: right; white-space: nowrap; }
.botlib-metrics th:first-child, .botlib-metrics td:first-child, .botlib-feed th,
  .botlib-feed td { text-align: left; }
.botlib-metrics th, .botlib-feed th { background: #f6f8fa; font-weight: 600; }
.botlib-metrics tr.botlib-total td { font-weight: 600; border-top: 2px solid #d0d7de; }
.botlib-feed td:last-child { white-space: normal; overflow-wrap: anywhere; width: 100%; }
.botlib-activity-attention td { background: #fff8c5; }
.botlib-note { font-size: 11px; color: #59636e; margin: 4px 0 0 0; white-space: normal; }
.botlib-metrics-box .widget-html-content, .botlib-activity-table .widget-html-content {
  white-space: normal; overflow-x: auto; }
.botlib-activity-table { max-height: 420px; overflow-y: auto; }
</style>"""


def stat(caption: str, value: widgets.HTML) -> widgets.VBox:
    """Stack a small caption over a value widget."""
    label = widgets.HTML(caption)
    label.add_class("botlib-caption")
    box = widgets.VBox([label, value])
    box.add_class("botlib-stat")
    return box


def value_widgets(keys: list[str], suffix: str) -> dict[str, widgets.HTML]:
    """Build one value widget per key, each with the CSS class the browser test reads."""
    values = {}
    for key in keys:
        value = widgets.HTML(NONE)
        value.add_class("botlib-value")
        value.add_class(f"botlib-{key}-{suffix}" if suffix else f"botlib-{key}")
        values[key] = value
    return values
