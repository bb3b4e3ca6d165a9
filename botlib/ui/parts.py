"""Small widget builders shared by the dashboard's header, panels and sections."""

from __future__ import annotations

import ipywidgets as widgets

from botlib.ui.shaping import NONE

__all__ = ["stat", "value_widgets"]


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
