"""The dashboard's stylesheet, shipped inside the widget tree (Voila serves no files of ours)."""

from __future__ import annotations

__all__ = ["CSS"]

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
</style>"""
