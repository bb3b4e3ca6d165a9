"""One chat-completion call with all its audit facts: replay cache, JSON-mode fallback, raw
response, usage, cost and latency. Decisions and reflections both go through `ChatModel`.

The real `openai` SDK does the HTTP (auth, timeout, retries with backoff honouring
`retry-after`); this module adds what a trading audit needs on top and translates the response
at the border: raw SDK objects never leave it, only `LlmReply`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, NonNegativeInt

from botlib.analysts.pricing import PriceTable
from botlib.errors import AnalystError
from botlib.storage.llm_cache import LlmCache

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = [
    "CacheMode",
    "ChatModel",
    "LlmReply",
    "LlmOutputError",
    "CacheMissError",
    "cache_key",
    "parse_json_object",
]

log = logging.getLogger(__name__)
CacheMode = Literal["off", "record", "replay"]
JSON_MODE: dict[str, Any] = {"type": "json_object"}
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


class LlmOutputError(AnalystError):
    """The endpoint answered, but not with a usable object (refusal, truncation, bad JSON)."""

    def __init__(self, message: str, reply: LlmReply) -> None:
        super().__init__(message)
        self.reply = reply


class CacheMissError(AnalystError):
    """Replay mode found no recorded response for this exact request."""

    def __init__(self, key: str, model: str) -> None:
        super().__init__(
            f"no cached response for hash {key} (model {model}); BOTLIB_LLM_CACHE=replay only"
            " answers from the cache: record it first with BOTLIB_LLM_CACHE=record"
        )
        self.key = key


@dataclass(frozen=True, slots=True)
class LlmReply:
    """The parts of one chat completion the audit and the analysts use."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    raw: str  # the response body as the endpoint sent it
    model: str | None  # the model the endpoint says answered
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    output_mode: str  # json_schema | json_object
    cache: str  # off | hit | recorded


def cache_key(model: str, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
    """Hash (model, messages, schema): the same question always has the same key."""
    text = json.dumps([model, messages, schema], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ChatModel:
    """Ask one model for one JSON object, recording what it cost and how it went."""

    def __init__(
        self,
        client: OpenAI | None,
        model: str,
        *,
        prices: PriceTable | None = None,
        cache: LlmCache | None = None,
        cache_mode: CacheMode = "off",
        max_completion_tokens: int = 700,
        temperature: float | None = 0.2,
    ) -> None:
        if cache_mode != "off" and cache is None:
            raise ValueError(f"cache mode {cache_mode!r} needs a cache")
        if cache_mode != "replay" and client is None:
            raise ValueError("a client is needed unless the cache mode is replay")
        self.client, self.model, self.cache, self.cache_mode = client, model, cache, cache_mode
        self.prices = prices or PriceTable()
        self.max_completion_tokens, self.temperature = max_completion_tokens, temperature
        self.json_schema_rejected = False  # set once the endpoint refuses json_schema output

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> LlmReply:
        """Answer from the cache or the endpoint; raise the SDK's errors or CacheMissError."""
        started = time.perf_counter()
        key = cache_key(self.model, messages, response_format)
        if self.cache is not None and self.cache_mode != "off":
            hit = self.cache.get(key)
            if hit is not None:
                return self._reply(hit[0], started, hit[1], cache="hit")
            if self.cache_mode == "replay":
                raise CacheMissError(key, self.model)
        raw, mode = self._call(messages, response_format)
        if self.cache is not None and self.cache_mode == "record":
            self.cache.put(key, self.model, raw, mode)
        return self._reply(
            raw, started, mode, cache="recorded" if self.cache_mode == "record" else "off"
        )

    def _call(
        self, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> tuple[str, str]:
        from openai import BadRequestError, UnprocessableEntityError

        if not self.json_schema_rejected:
            try:
                return self._post(messages, response_format), "json_schema"
            except (BadRequestError, UnprocessableEntityError) as exc:
                if not _rejects_json_schema(exc.message):
                    raise
                self.json_schema_rejected = True
                log.warning(
                    "endpoint rejected json_schema output (%s): using JSON mode plus our own"
                    " validation from now on", exc.message,
                )  # fmt: skip
        return self._post(messages, JSON_MODE), "json_object"

    def _post(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> str:
        from openai import omit

        assert self.client is not None
        # plain dicts for messages and response_format: the SDK's TypedDicts are the same shape
        response = self.client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
            model=self.model,
            messages=messages,
            response_format=response_format,
            max_completion_tokens=self.max_completion_tokens,
            temperature=omit if self.temperature is None else self.temperature,
        )
        return response.text

    def _reply(self, raw: str, started: float, output_mode: str, *, cache: str) -> LlmReply:
        reply = parse_reply(raw, self.model, output_mode, cache)
        if cache == "hit":  # a replayed answer costs nothing
            cost: float | None = 0.0
        else:
            cost = self.prices.cost(
                self.model, reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens or 0
            )
        latency = (time.perf_counter() - started) * 1000
        return replace(reply, cost_usd=cost, latency_ms=latency)


def _rejects_json_schema(message: str) -> bool:
    text = message.lower()
    return "json_schema" in text or "response_format" in text or "structured output" in text


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message | None = None
    finish_reason: str | None = None


class _TokenDetails(BaseModel):
    cached_tokens: NonNegativeInt | None = None


class _Usage(BaseModel):
    prompt_tokens: NonNegativeInt | None = None
    completion_tokens: NonNegativeInt | None = None
    total_tokens: NonNegativeInt | None = None
    prompt_tokens_details: _TokenDetails | None = None


class _Completion(BaseModel):
    """The parts of a chat-completion body we read, typed.

    An OpenAI-compatible endpoint can send any shape: a wrong one fails here as AnalystError
    (the log row keeps the raw body), and negative token counts, which would make the day's
    spend negative and lift the LLM budget, are refused.
    """

    choices: list[_Choice] = Field(min_length=1)
    model: str | None = None
    usage: _Usage | None = None


def parse_reply(raw: str, model: str, output_mode: str, cache: str) -> LlmReply:
    """Translate a chat-completion body into an `LlmReply` (a body of another shape raises)."""
    try:
        body = _Completion.model_validate(json.loads(raw))
    except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        raise AnalystError(
            f"malformed chat completion ({type(exc).__name__}): {raw[:200]!r}"
        ) from None
    choice = body.choices[0]
    message = choice.message or _Message()
    usage = body.usage or _Usage()
    details = usage.prompt_tokens_details or _TokenDetails()
    return LlmReply(
        content=message.content,
        refusal=message.refusal,
        finish_reason=choice.finish_reason,
        raw=raw,
        model=body.model or model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=details.cached_tokens,
        cost_usd=None,
        latency_ms=0.0,
        output_mode=output_mode,
        cache=cache,
    )


def parse_json_object(reply: LlmReply) -> dict[str, Any]:
    """Return the JSON object a reply holds, or raise `LlmOutputError` saying why it can't.

    JSON mode (and some local models) may wrap the object in a code fence or prose: the
    outermost `{...}` is taken, then validated like any other answer.
    """
    if reply.refusal:
        raise LlmOutputError(f"refusal: {reply.refusal}", reply)
    if reply.finish_reason == "length":
        raise LlmOutputError(
            f"truncated: finish_reason=length after {reply.completion_tokens} completion tokens",
            reply,
        )
    if reply.finish_reason == "content_filter":
        raise LlmOutputError("blocked: finish_reason=content_filter", reply)
    text = _FENCE.sub("", (reply.content or "").strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise LlmOutputError(f"no JSON object in the answer: {text[:200]!r}", reply)
    try:
        value = json.loads(text[start : end + 1])
    except ValueError as exc:
        raise LlmOutputError(f"malformed JSON: {exc}", reply) from None
    except RecursionError:  # ~10,000 levels deep: no decision is nested like that
        raise LlmOutputError("malformed JSON: nested too deeply to read", reply) from None
    if not isinstance(value, dict):
        raise LlmOutputError("the answer is not a JSON object", reply)
    return value
