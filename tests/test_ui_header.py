"""The header's texts and widgets: mode, P&L, heartbeat, lights, and the HALTED banner."""

from __future__ import annotations

from datetime import timedelta

from botlib.core.risk import RiskLimits
from botlib.reporting.monitoring import AccountHeader, AssetCycle, Heartbeat
from botlib.ui.header import (
    Header,
    banner_html,
    header_texts,
    heartbeat_text,
    light_html,
    llm_spend_text,
    mode_text,
)
from tests.conftest import T0

NOW = T0


def _status(**changes: object) -> AccountHeader:
    fields: dict[str, object] = {
        "read_at": NOW,
        "limits": RiskLimits(max_drawdown_pct=20.0, max_daily_loss_pct=5.0, llm_budget_usd=2.0),
        "mode": "sim",
        "equity": 100_500.0,
        "cash": 90_000.0,
        "start_equity": 100_000.0,
        "day_start_equity": 101_000.0,
        "peak_equity": 102_000.0,
        "positions": 1,
        "positions_value": 10_500.0,
        "llm_today": 0.5,
        "heartbeat": Heartbeat(started_at=NOW - timedelta(seconds=30)),
        "assets": (
            AssetCycle("BTC/USD", False, 15, None, "ok", NOW - timedelta(minutes=1)),
            AssetCycle(
                "SOL/USD",
                False,
                15,
                None,
                "failed",
                NOW - timedelta(minutes=1),
                reason='<img src=x> "quote"',
                error="BrokerError",
            ),
        ),  # fmt: skip
    }
    return AccountHeader(**(fields | changes))  # type: ignore[arg-type]


def test_header_texts() -> None:
    texts = header_texts(_status(), NOW)
    assert texts["mode"] == "SIM"
    assert texts["equity"] == "$100,500.00"
    assert texts["pnl"] == '<span class="botlib-gain">+$500.00</span>'
    assert texts["day-pnl"] == '<span class="botlib-loss">−$500.00 (−0.50 %)</span>'
    assert texts["positions"] == "1 · $10,500.00"
    assert texts["llm"] == "$0.5 / $2.00"  # below $1: significant digits, not cents
    assert texts["heartbeat"].startswith("last tick 11:59:30 UTC (30 s ago)")
    empty = header_texts(AccountHeader(read_at=NOW, limits=RiskLimits()), NOW)
    assert empty["mode"] == empty["equity"] == empty["pnl"] == "—"
    assert empty["heartbeat"] == "no scheduler yet"


def test_live_mode_is_red_and_mode_text_is_escaped() -> None:
    assert mode_text("live") == '<span class="botlib-mode-live">LIVE</span>'
    assert mode_text("paper") == "PAPER"
    assert mode_text("<b>") == "&lt;B&gt;"


def test_llm_spend_is_flagged_at_the_budget() -> None:
    assert (
        llm_spend_text(5.5, 5.0)
        == '<span class="botlib-loss">$5.50 / $5.00 · budget reached</span>'
    )
    assert llm_spend_text(0.01, 2.0) == "$0.01 / $2.00"
    assert llm_spend_text(None, 2.0) == "—"


def test_heartbeat_text_says_late_running_failed_and_next() -> None:
    beat = Heartbeat(started_at=NOW, next_at=NOW + timedelta(minutes=1), failed=2)
    assert heartbeat_text(beat, NOW + timedelta(seconds=5)) == (
        "last tick 12:00:00 UTC (5 s ago) · running · 2 failed · next 12:01:00 UTC"
    )
    assert heartbeat_text(beat, NOW + timedelta(minutes=4)).startswith("⚠ late: last tick")


def test_failed_light_shows_the_escaped_reason_in_text_and_title() -> None:
    light = _status().assets[1].light(NOW)
    rendered = light_html(light)
    assert 'class="botlib-light botlib-state-failed"' in rendered
    assert 'title="BrokerError: &lt;img src=x&gt; &quot;quote&quot;"' in rendered
    assert "SOL/USD · failed: &lt;img src=x&gt;" in rendered
    assert "<img" not in rendered


def test_banner_names_the_crossed_limits() -> None:
    assert banner_html(_status()) == ""
    deep = banner_html(_status(equity=80_000.0))  # 21.6 % below the peak, -20.8 % today
    assert deep.startswith("<b>HALTED</b> — new entries blocked, exits still allowed")
    assert "drawdown 21.57 %" in deep and "today's loss 20.79 %" in deep


def test_header_widgets_update_in_place() -> None:
    header = Header()
    mode, banner = header.values["mode"], header.banner
    header.show(_status(), NOW)
    assert banner.layout.display == "none"
    assert "botlib-day-pnl" in header.values["day-pnl"]._dom_classes
    lights = dict(header.lights)
    assert list(lights) == ["BTC/USD", "SOL/USD"]
    assert "botlib-light-SOLUSD" in lights["SOL/USD"]._dom_classes
    assert "botlib-state-failed" in lights["SOL/USD"]._dom_classes
    assert "botlib-state-ok" in lights["BTC/USD"]._dom_classes

    header.show(_status(mode="live", equity=80_000.0), NOW)
    assert header.values["mode"] is mode and header.banner is banner
    assert mode.value == '<span class="botlib-mode-live">LIVE</span>'
    assert banner.layout.display is None and "HALTED" in banner.value
    assert header.lights == lights  # the same widgets
    assert len(header.lights_row.children) == 3  # caption + two lights

    header.show(_status(), NOW)
    assert banner.layout.display == "none" and banner.value == ""


def test_tick_ages_heartbeat_and_lights_without_a_new_status() -> None:
    header = Header()
    header.show(_status(), NOW)
    beat = header.values["heartbeat"]
    assert "botlib-state-ok" in beat._dom_classes
    later = NOW + timedelta(minutes=40)  # 15-minute assets: stale after 32 minutes
    header.tick(later)
    assert "botlib-state-late" in beat._dom_classes
    assert "botlib-state-ok" not in beat._dom_classes
    assert beat.value.startswith("⚠ late")
    btc = header.lights["BTC/USD"]
    assert "botlib-state-stale" in btc._dom_classes
    assert "botlib-state-ok" not in btc._dom_classes


def test_paused_light_is_grey() -> None:
    paused = AssetCycle("ETH/USD", True, 15, None, "failed", NOW - timedelta(days=1))
    header = Header()
    header.show(_status(assets=(paused,)), NOW)
    assert "botlib-state-paused" in header.lights["ETH/USD"]._dom_classes
