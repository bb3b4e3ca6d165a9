"""Every decision replayable: a logged decision's inputs rebuilt from stored bars, and rerun.

`rebuild` reads one `ai_decision_logs` row and the bars the bot stored (`market_data`), computes
the cycle's window as the live cycle did at the same clock (`LiveFeatures`, storing nothing),
takes the account, position, price and limits the row's `request` recorded, and builds the
prompt again: for a model's decision it equals the logged prompt byte for byte (`same_prompt`;
the tests prove it). `what_if` asks another analyst (another model, prompt variant or the
rules) on exactly that context and returns both answers side by side; nothing is written to
the bot's database, and `call_estimate` says what a paid rerun costs before it is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botlib.analysts.factory import with_higher_timeframes
from botlib.analysts.prompt import build_messages
from botlib.arena.research import COMPLETION_TOKENS
from botlib.clock import parse_time
from botlib.core.cycle_features import LiveFeatures
from botlib.errors import ConfigError
from botlib.models import Account, AssetSettings, Position
from botlib.ports import Analyst, MarketContext
from botlib.reporting.ai_logs import logged_decision
from botlib.storage.base import jsonable
from botlib.storage.store import Store
from botlib.venues.stored_bars import FrameMarket

__all__ = ["Rebuilt", "rebuild", "what_if", "call_estimate"]

_SHOWN = ("action", "confidence", "position_size_pct", "stop_loss", "take_profit", "reasoning")


@dataclass(frozen=True)
class Rebuilt:
    """A logged decision, the context rebuilt for it and the prompt built from that context."""

    row: dict[str, Any]
    context: MarketContext
    messages: list[dict[str, str]]

    @property
    def same_prompt(self) -> bool:
        """Whether the rebuilt prompt is the logged one, byte for byte (as stored)."""
        return self.row.get("prompt") == jsonable(self.messages)


def rebuild(db_path: Path | str, decision_id: int) -> Rebuilt:
    """Rebuild decision `decision_id` of the bot's database (opened read-only)."""
    with Store(db_path, read_only=True) as store:
        row = logged_decision(store, decision_id)
        if row is None:
            raise ConfigError(f"{db_path} has no decision {decision_id}")
        request = json.loads(row["request"] or "{}")
        if "account" not in request:
            raise ConfigError(f"decision {decision_id} recorded no request to rebuild it from")
        bars = store.load_bars(row["symbol"], request["timeframe"], limit=None)
    limits = request["limits"]
    asset = AssetSettings(
        symbol=row["symbol"], timeframe=request["timeframe"],
        position_size_pct=float(limits["max_position_size_pct"]),
        stop_loss_pct=float(limits["default_stop_loss_pct"]),
        take_profit_pct=float(limits["default_take_profit_pct"]),
    )  # fmt: skip
    now = parse_time(row["created_at"])
    assert now is not None
    source = LiveFeatures(FrameMarket(row["symbol"], request["timeframe"], bars), None)
    features = source.features(asset, now)
    cash, equity = request["account"]["cash"], request["account"]["equity"]
    held = request.get("position")
    position = (
        None if held is None else Position(row["symbol"], held["qty"], held["avg_entry_price"])
    )
    context = MarketContext(
        row["symbol"], now, features, asset, Account(cash, equity, cash, "replay"), position,
        float(request["price"]), source.summary(features),
    )  # fmt: skip
    if "higher_timeframes" in request.get("smc", {}):  # a multi-timeframe analyst's prompt
        context = with_higher_timeframes(context)
    messages, _ = build_messages(context, request.get("prompt_variant", "default"))
    return Rebuilt(row, context, messages)


def what_if(db_path: Path | str, decision_id: int, analyst: Analyst) -> dict[str, Any]:
    """Ask `analyst` on decision `decision_id`'s exact context; both answers side by side."""
    rebuilt = rebuild(db_path, decision_id)
    result = analyst.decide(rebuilt.context)
    rerun = result.decision.model_dump(mode="json")
    return {
        "decision_id": decision_id, "same_prompt": rebuilt.same_prompt,
        "original": {"analyst": rebuilt.row["analyst"], "model": rebuilt.row["model"]}
        | {k: rebuilt.row[k] for k in _SHOWN} | {"cost_usd": rebuilt.row["cost_usd"]},
        "rerun": {"analyst": result.analyst, "model": result.model}
        | {k: rerun[k] for k in _SHOWN} | {"cost_usd": result.call.cost_usd,
                                          "error": result.call.error},
    }  # fmt: skip


def call_estimate(spec: Any, rebuilt: Rebuilt) -> float | None:
    """USD one call of `spec` costs on this prompt (~4 characters a token), None: no price."""
    if spec.kind != "llm":
        return 0.0
    price = spec.price_table().lookup(spec.model)
    if price is None:
        return None
    prompt_tokens = sum(len(m["content"]) for m in rebuilt.messages) // 4
    return price.cost(prompt_tokens, COMPLETION_TOKENS)
