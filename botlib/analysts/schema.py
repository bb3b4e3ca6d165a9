"""What a model must answer: strict JSON schemas generated from pydantic models.

The decision schema carries the model's ICT/SMC reading next to the trade itself, so a reader
can see which structure, liquidity and zone it claims to have used. The models are written to
satisfy OpenAI's strict structured-output rules directly (every property required, nullable
instead of optional, no additional properties), so `pydantic.model_json_schema()` is the
schema sent; `tests/test_llm.py` checks those rules. Value limits (confidence 0-1, sizes,
stop sides, a limit entry inside a bullish zone) are checked after parsing, by `Decision` and
`botlib.core.decision_checks`. The entry fields (`order_type`, `limit_price`) are required in
the schema sent but default to a market entry when parsed (`_every_property_required`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from botlib.models import Action, Decision

__all__ = [
    "SmcReading",
    "DecisionOutput",
    "ReflectionOutput",
    "response_format",
    "smc_reading",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmcReading(_Strict):
    """The ICT/SMC facts a decision rests on, in the model's words."""

    market_structure: Literal["bullish", "bearish", "ranging"]
    liquidity: str = Field(description="liquidity swept or targeted, with its level, or 'none'")
    zone_used: str = Field(description="the FVG or order block used, with its range, or 'none'")
    premium_discount: Literal["premium", "discount", "equilibrium", "unknown"]
    killzone: Literal["london", "new_york", "asia", "none"]


def _every_property_required(schema: dict[str, Any]) -> None:
    """Send every property as required and without a default, as strict mode demands.

    Parsing still takes an answer without the entry fields as a market entry, the meaning every
    answer had before they existed: JSON-mode endpoints may leave them out.
    """
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["required"] = list(schema["properties"])


class DecisionOutput(_Strict):
    """The model's answer for one cycle; reading and reasoning come before the action."""

    model_config = ConfigDict(json_schema_extra=_every_property_required)

    symbol: str
    smc: SmcReading
    reasoning: str = Field(description="why, in at most 80 words, naming the features used")
    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(description="0 to 1")
    position_size_pct: float = Field(description="percent of equity to buy, 0 for SELL/HOLD")
    order_type: Literal["market", "limit"] = Field(
        default="market", description="limit: a BUY resting inside a bullish FVG/OB; else market"
    )
    limit_price: float | None = Field(
        default=None, description="price for a limit BUY, within the zone and <= price; else null"
    )
    stop_loss: float | None = Field(description="price; below entry for BUY, else null")
    take_profit: float | None = Field(description="price; above entry for BUY, else null")

    def to_decision(self) -> Decision:
        """Return the engine's `Decision`; out-of-range values raise pydantic's ValidationError."""
        return Decision(
            symbol=self.symbol,
            action=Action(self.action),
            confidence=self.confidence,
            position_size_pct=self.position_size_pct,
            order_type=self.order_type,
            limit_price=self.limit_price,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            reasoning=self.reasoning,
            signals={"smc": self.smc.model_dump()},
        )


class ReflectionOutput(_Strict):
    """A short review of one closed trade."""

    summary: str = Field(description="one sentence: the trade and its outcome")
    what_worked: str
    what_failed: str
    suggestions: list[str] = Field(description="concrete parameter or rule changes, at most 3")


def response_format(model: type[BaseModel], name: str) -> dict[str, Any]:
    """Return the chat-completions `response_format` asking for `model`'s strict JSON schema."""
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": model.model_json_schema()},
    }


def smc_reading(summary: dict[str, Any]) -> SmcReading:
    """Read the SMC summary the way the schema asks a model to (used by the rules analyst).

    >>> smc_reading({"trend": "bullish", "premium_discount": {"zone": "discount"}}).killzone
    'none'
    """
    trend = summary.get("trend")
    zone = (summary.get("premium_discount") or {}).get("zone")
    sweep = summary.get("sweep")
    used = summary.get("fvg_below") or summary.get("ob_below")
    return SmcReading(
        market_structure=trend if trend in ("bullish", "bearish") else "ranging",
        liquidity=f"{sweep['side']} sweep at {sweep['level']}" if sweep else "none",
        zone_used=f"{used['bottom']}-{used['top']} below" if used else "none",
        premium_discount=zone if zone in ("premium", "discount", "equilibrium") else "unknown",
        killzone=summary.get("killzone") or "none",
    )
