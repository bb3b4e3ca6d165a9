"""The control panel driven from Python as an operator would click it (real store, simulator)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from botlib.app.config import Settings
from botlib.app.wiring import build_engine, ensure_assets
from botlib.clock import ManualClock
from botlib.core.engine import Engine
from botlib.errors import ConfigError
from botlib.ops.control import KILL_PHRASE, set_interval
from botlib.ops.limits import load_limits
from botlib.ops.operator_log import log_action
from botlib.storage.store import Store
from botlib.ui.control_panel import ControlPanel, actions_html
from tests.conftest import T0
from tests.test_engine import ScriptedAnalyst, buy, make


class Factory:
    """Builds the real sim engine on the test's clock, counting how often it was asked."""

    def __init__(self, settings: Settings, store: Store, clock: ManualClock) -> None:
        self.settings, self.store, self.clock, self.built = settings, store, clock, 0

    def __call__(self) -> Engine:
        self.built += 1
        return build_engine(self.settings, self.store, self.clock)


@pytest.fixture
def factory(settings: Settings, store: Store, clock: ManualClock) -> Factory:
    assert (settings.resolved_mode, settings.resolved_analyst) == ("sim", "rules")
    ensure_assets(store, ["BTC/USD", "SOL/USD"])
    return Factory(settings, store, clock)


@pytest.fixture
def panel(settings: Settings, store: Store, factory: Factory) -> ControlPanel:
    return ControlPanel(store, settings.limits, factory, actor="ann")


def message_classes(panel: ControlPanel) -> set[str]:
    return set(panel.message._dom_classes)


def open_both(store: Store, clock: ManualClock) -> None:
    engine = make(store, clock, ScriptedAnalyst(buy))
    for symbol in ("BTC/USD", "SOL/USD"):
        engine.run_cycle(symbol, force=True)
    clock.advance(timedelta(minutes=5))


def test_the_panel_shows_the_stored_settings(
    panel: ControlPanel, store: Store, settings: Settings
) -> None:
    assert set(panel.rows) == {"BTC/USD", "SOL/USD"}
    btc = store.get_asset("BTC/USD")
    row = panel.rows["BTC/USD"]
    assert (row.interval.value, row.size.value, row.paused.value, row.analyst.value) == (
        btc.interval_minutes, btc.position_size_pct, btc.paused, "",
    )  # fmt: skip
    assert panel.limits.fields["max_daily_loss_pct"].value == settings.max_daily_loss_pct
    assert "no operator actions yet" in panel.actions.value
    assert panel._repr_mimebundle_()["text/plain"] == "botlib control panel"


def test_apply_writes_the_interval_and_says_so_in_green(
    panel: ControlPanel, store: Store, factory: Factory
) -> None:
    row = panel.rows["BTC/USD"]
    row.interval.value = 15
    row.apply.click()
    assert store.get_asset("BTC/USD").interval_minutes == 15
    assert store.get_asset("SOL/USD").interval_minutes == 60
    assert panel.ok is True and "botlib-message-ok" in message_classes(panel)
    assert "BTC/USD: every 15 min (was 60 min)" in panel.message.value
    assert "<td>interval</td>" in panel.actions.value and "<td>ann</td>" in panel.actions.value
    assert factory.built == 0  # settings never need a broker


def test_a_refused_size_shows_the_error_and_changes_nothing(
    panel: ControlPanel, store: Store
) -> None:
    row = panel.rows["SOL/USD"]
    row.size.value = 150
    row.apply.click()
    assert store.get_asset("SOL/USD").position_size_pct == 10.0
    assert panel.ok is False and "botlib-message-error" in message_classes(panel)
    assert "position_size_pct must be a number &gt; 0 and &lt;= 100" in panel.message.value
    assert row.size.value == 10.0  # the row shows what is in force again
    assert store.rows("SELECT result FROM operator_actions") == [{"result": "rejected"}]


def test_several_edits_apply_each_and_report_each(panel: ControlPanel, store: Store) -> None:
    row = panel.rows["BTC/USD"]
    row.paused.value, row.stop_loss.value, row.take_profit.value = True, 3.0, 5000.0
    row.analyst.value = "openai"
    row.apply.click()
    btc = store.get_asset("BTC/USD")
    assert (btc.paused, btc.analyst, btc.stop_loss_pct, btc.take_profit_pct) == (
        True, "openai", 2.0, 4.0,  # the stops were one call, refused as a whole
    )  # fmt: skip
    assert panel.ok is False
    assert "BTC/USD: paused" in panel.message.value and "take_profit_pct" in panel.message.value
    results = store.rows("SELECT action, result FROM operator_actions ORDER BY id")
    assert [(r["action"], r["result"]) for r in results] == [
        ("pause", "ok"), ("analyst", "ok"), ("stops", "rejected"),
    ]  # fmt: skip


def test_limits_apply_and_refuse(panel: ControlPanel, store: Store, settings: Settings) -> None:
    panel.limits.fields["max_drawdown_pct"].value = 12.0
    panel.limits.apply.click()
    assert load_limits(store, settings.limits).max_drawdown_pct == 12.0 and panel.ok is True
    panel.limits.fields["max_daily_loss_pct"].value = -1.0
    panel.limits.apply.click()
    assert panel.ok is False and "max_daily_loss_pct" in panel.message.value
    assert load_limits(store, settings.limits).max_daily_loss_pct == settings.max_daily_loss_pct
    assert panel.limits.fields["max_daily_loss_pct"].value == settings.max_daily_loss_pct


def test_kill_switch_confirmation_cancel_and_confirm(
    panel: ControlPanel, store: Store, clock: ManualClock, factory: Factory
) -> None:
    open_both(store, clock)
    kill = panel.kill
    assert not kill.visible
    kill.button.click()
    assert kill.visible
    kill.phrase.value = "flatten"
    kill.cancel.click()
    assert not kill.visible and kill.phrase.value == ""
    kill.button.click()
    kill.phrase.value = "flatten all"  # not the phrase: refused, nothing sold
    kill.confirm.click()
    assert panel.ok is False and KILL_PHRASE in panel.message.value and kill.visible
    assert len(store.rows("SELECT * FROM positions")) == 2
    kill.phrase.value = KILL_PHRASE
    kill.confirm.click()
    assert panel.ok is True, panel.message.value
    assert not kill.visible
    assert store.rows("SELECT * FROM positions") == []
    assert panel.engine().broker.positions() == []
    assert len(store.rows("SELECT * FROM trades WHERE side = 'sell'")) == 2
    assert all(row.paused.value for row in panel.rows.values())
    assert all(a.paused for a in store.list_assets())
    assert factory.built == 1  # built on the first press, then kept


def test_close_now_sells_that_asset(panel: ControlPanel, store: Store, clock: ManualClock) -> None:
    open_both(store, clock)
    panel.rows["SOL/USD"].close.click()
    assert panel.ok is True and "closed by manual" in panel.message.value
    assert [p["symbol"] for p in store.rows("SELECT symbol FROM positions")] == ["BTC/USD"]


def test_callbacks_never_raise_into_the_notebook(
    store: Store, settings: Settings, factory: Factory
) -> None:
    def no_keys() -> Engine:
        raise ConfigError("BOTLIB_MODE=paper needs ALPACA_API_KEY")

    panel = ControlPanel(store, settings.limits, no_keys)
    panel.rows["BTC/USD"].close.click()
    assert panel.ok is False and "needs ALPACA_API_KEY" in panel.message.value
    store.close()  # even a closed database only turns the message red
    panel.reload.click()
    assert panel.ok is False and "closed database" in panel.message.value


def test_reload_picks_up_changes_made_elsewhere(panel: ControlPanel, store: Store) -> None:
    set_interval(store, "SOL/USD", 5)
    ensure_assets(store, ["ETH/USD"])
    assert panel.rows["SOL/USD"].interval.value == 60
    panel.reload.click()
    assert panel.rows["SOL/USD"].interval.value == 5
    assert set(panel.rows) == {"BTC/USD", "SOL/USD", "ETH/USD"} and panel.ok is True


def test_the_actions_table_escapes_what_it_shows(store: Store) -> None:
    log_action(store, actor="<b>x</b>", action="pause", symbol="BTC/USD", params={},
               result="rejected", message="<script>alert(1)</script>", now=T0)  # fmt: skip
    table = actions_html([dict(r) for r in store.rows("SELECT * FROM operator_actions")])
    assert "<script>" not in table and "&lt;script&gt;" in table and "&lt;b&gt;x" in table
    assert 'class="botlib-rejected"' in table
