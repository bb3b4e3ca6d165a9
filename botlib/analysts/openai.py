"""The LLM analyst: GPT-4o (or any OpenAI-compatible endpoint) with strict structured output.

Every way a call can go wrong (timeout, rate limit, auth, a refusal, a truncated or invalid
answer, a replay-cache miss) ends in a HOLD whose log row names the error class and message;
the tokens and cost of an answer that was rejected are still recorded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from botlib.analysts.llm import ChatModel, LlmOutputError, LlmReply, parse_json_object
from botlib.analysts.prompt import REFLECTION_PROMPT, build_messages
from botlib.analysts.schema import DecisionOutput, ReflectionOutput, response_format
from botlib.errors import AnalystError
from botlib.models import Decision
from botlib.ports import AnalystResult, CallRecord, MarketContext, ReflectionResult, TradeReview
from botlib.redact import register_secrets, scrub

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = ["OpenAIAnalyst", "make_client", "DECISION_FORMAT", "REFLECTION_FORMAT"]

log = logging.getLogger(__name__)
DECISION_FORMAT = response_format(DecisionOutput, "trading_decision")
REFLECTION_FORMAT = response_format(ReflectionOutput, "trade_reflection")


def make_client(
    api_key: str, base_url: str | None = None, timeout_s: float = 30.0, max_retries: int = 2
) -> OpenAI:
    """Build the SDK client with our own timeout and retry budget (never the SDK's 600 s).

    The key is registered with the log redactor first: an endpoint's error can echo it (OpenAI's
    401 says "Incorrect API key provided: sk-…", a gateway's key need not look like `sk-…`), and
    callers that built their engine without the CLI registered nothing.
    """
    from openai import OpenAI

    register_secrets([api_key])
    return OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)


def _error_text(exc: Exception) -> str:
    """Name the error class and say what happened, in one line, scrubbed of keys.

    The SDK's message quotes the endpoint's error body, which can echo the key; this text goes
    to the log row, the cycle, a log record and the HOLD's reasoning, so it is scrubbed here.
    """
    return scrub(_describe(exc))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        return f"InvalidDecision: {problems}"
    return f"{type(exc).__name__}: {exc}"


def _record(
    messages: list[dict[str, str]],
    reply: LlmReply | None,
    *,
    response: Any = None,
    error: str | None = None,
    latency_ms: float | None = None,
) -> CallRecord:
    if reply is None:
        return CallRecord(prompt=messages, error=error, latency_ms=latency_ms)
    return CallRecord(
        prompt=messages,
        response=response,
        raw_response=reply.raw,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        total_tokens=reply.total_tokens,
        cached_tokens=reply.cached_tokens,
        cost_usd=reply.cost_usd,
        latency_ms=reply.latency_ms,
        error=error,
        output_mode=reply.output_mode,
        cache=reply.cache,
    )


class OpenAIAnalyst:
    """Ask the model for a `DecisionOutput`; anything unusable becomes a logged HOLD."""

    name = "openai"

    def __init__(self, chat: ChatModel, prompt_variant: str = "default") -> None:
        self.chat, self.prompt_variant = chat, prompt_variant

    @property
    def model(self) -> str:
        return self.chat.model

    def decide(self, context: MarketContext) -> AnalystResult:
        messages, facts = build_messages(context, self.prompt_variant)
        reply, failure = self._complete(messages, DECISION_FORMAT)
        if reply is None:
            return self._hold(context.symbol, facts, _record(messages, None, **failure))
        try:
            answer = DecisionOutput.model_validate(parse_json_object(reply))
            decision = answer.to_decision()
        except (LlmOutputError, ValidationError) as exc:
            error = _error_text(exc)
            log.warning("model answer rejected: %s", error)
            # stored once: the raw body (`raw_response`) holds the answer as the endpoint sent it
            record = _record(messages, reply, response=None, error=error)
            return self._hold(context.symbol, facts, record)
        record = _record(messages, reply, response=answer.model_dump(mode="json"))
        return AnalystResult(decision, self.name, self.model, request=facts, call=record)

    def reflect(self, review: TradeReview) -> ReflectionResult:
        facts = {
            "trade": review.describe(),  # how it ended, in words (`exit_note`)
            "exit_reason": review.exit_reason,
            "entry": review.entry_decision,
            "exit": review.exit_decision,
        }
        messages = [
            {"role": "system", "content": REFLECTION_PROMPT},
            {"role": "user", "content": json.dumps(facts, separators=(",", ":"), default=str)},
        ]
        reply, failure = self._complete(messages, REFLECTION_FORMAT)
        try:
            if reply is None:
                raise AnalystError(failure["error"])
            answer = ReflectionOutput.model_validate(parse_json_object(reply))
        except (AnalystError, ValidationError) as exc:
            error = failure.get("error") or _error_text(exc)
            record = _record(messages, reply, error=error, latency_ms=failure.get("latency_ms"))
            return ReflectionResult(review.describe(), "", "", [], self.name, self.model, record)
        record = _record(messages, reply, response=answer.model_dump(mode="json"))
        return ReflectionResult(
            answer.summary, answer.what_worked, answer.what_failed, answer.suggestions[:3],
            self.name, self.model, record,
        )  # fmt: skip

    def _complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> tuple[LlmReply | None, dict[str, Any]]:
        """Return the reply, or None plus the error and latency of a call that failed."""
        from openai import APIError

        started = time.perf_counter()
        try:
            return self.chat.complete(messages, schema), {}
        except (APIError, AnalystError) as exc:
            error = _error_text(exc)
            log.warning("LLM call failed: %s", error)
            return None, {"error": error, "latency_ms": (time.perf_counter() - started) * 1000}

    def _hold(self, symbol: str, facts: dict[str, Any], record: CallRecord) -> AnalystResult:
        decision = Decision.hold(symbol, f"no trade: {record.error}")
        return AnalystResult(decision, self.name, self.model, request=facts, call=record)
