"""A loopback fake of the OpenAI chat-completions API, for the unmodified `openai` SDK.

It listens on 127.0.0.1 (a free port), answers `POST /v1/chat/completions` with the real
response and error shapes (see ../shared/CONTRACTS.md), counts prompt and completion tokens
with the o200k tokenizer gpt-4o uses (`bpe-openai`, offline), and records every request.
Tests queue responders (`fake.push(...)`): functions from the request body to a `Reply`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import bpe_openai

from tests.fakes.loopback import Loopback, LoopbackServer

__all__ = [
    "FakeOpenAI",
    "Reply",
    "Responder",
    "count_tokens",
    "chat_tokens",
    "completion",
    "decision",
    "buy",
    "prompt_price",
    "refusal",
    "error",
    "html_page",
    "slow",
    "rejects_json_schema",
]

_ENCODING = bpe_openai.get_encoding("o200k_base")
_SYMBOL = re.compile(r"symbol: (\S+)")


def count_tokens(text: str) -> int:
    return len(_ENCODING.encode(text))


def chat_tokens(messages: list[dict[str, Any]]) -> int:
    """Count prompt tokens the way OpenAI bills chat messages (3 per message, 3 to reply)."""
    return sum(3 + count_tokens(str(m.get("content", ""))) for m in messages) + 3


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list are sent as JSON, str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], Reply]


def completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal_text: str | None = None,
    model: str = "gpt-4o-2024-08-06",
    cached_tokens: int = 0,
) -> Responder:
    """Answer with a chat completion whose message content is `content`."""

    def respond(request: dict[str, Any]) -> Reply:
        prompt = chat_tokens(request.get("messages", []))
        produced = count_tokens(content or refusal_text or "")
        body = {
            "id": f"chatcmpl-fake{int(time.time() * 1000)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": refusal_text},
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": produced,
                "total_tokens": prompt + produced,
                "prompt_tokens_details": {"cached_tokens": min(cached_tokens, prompt)},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "system_fingerprint": "fp_fake",
        }
        return Reply(200, body)

    return respond


def requested_symbol(request: dict[str, Any]) -> str:
    """Return the symbol the prompt asks about (the user message states it)."""
    text = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
    found = _SYMBOL.search(text)
    return found.group(1) if found else "BTC/USD"


def decision(**fields: Any) -> Responder:
    """Answer with a valid decision for the requested symbol; `fields` override its values.

    A callable field value is called with the request (e.g. to place a stop under the price).
    """

    def respond(request: dict[str, Any]) -> Reply:
        answer: dict[str, Any] = {
            "symbol": requested_symbol(request),
            "smc": {
                "market_structure": "bullish",
                "liquidity": "sell-side sweep below the Asian low",
                "zone_used": "bullish FVG",
                "premium_discount": "discount",
                "killzone": "london",
            },
            "reasoning": "Bullish structure in discount after a sell-side sweep.",
            "action": "HOLD",
            "confidence": 0.4,
            "position_size_pct": 0.0,
            "stop_loss": None,
            "take_profit": None,
        }
        for name, value in fields.items():
            answer[name] = value(request) if callable(value) else value
        return completion(json.dumps(answer))(request)

    return respond


def prompt_price(request: dict[str, Any]) -> float:
    """Read the last price the prompt states (answers placed relative to it stay valid)."""
    line = request["messages"][1]["content"].splitlines()[0]
    return float(line.rsplit("price: ", 1)[1])


def buy(**fields: Any) -> Responder:
    """A valid BUY (stop 2 % under, target 4 % over the prompt's price), with overrides."""
    base: dict[str, Any] = {
        "action": "BUY",
        "confidence": 0.8,
        "position_size_pct": 5.0,
        "stop_loss": lambda r: round(prompt_price(r) * 0.98, 2),
        "take_profit": lambda r: round(prompt_price(r) * 1.04, 2),
    }
    return decision(**(base | fields))


def refusal(text: str = "I can't help with that.") -> Responder:
    return completion(None, refusal_text=text)


def error(status: int, message: str, *, kind: str = "error", code: str | None = None,
          headers: dict[str, str] | None = None) -> Responder:  # fmt: skip
    """Answer with OpenAI's error shape."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return lambda request: Reply(status, body, headers or {})


def html_page(status: int) -> Responder:
    """Answer with an HTML page, as a proxy or gateway in front of the API does."""
    page = f"<html><body><h1>{status}</h1>Bad Gateway</body></html>"
    return lambda request: Reply(status, page, {"Content-Type": "text/html"})


def slow(delay_s: float, then: Responder) -> Responder:
    """Answer like `then`, but only after `delay_s` seconds."""

    def respond(request: dict[str, Any]) -> Reply:
        reply = then(request)
        reply.delay_s = delay_s
        return reply

    return respond


def rejects_json_schema(then: Responder) -> Responder:
    """Behave like an endpoint without structured outputs: 400 for json_schema, else `then`."""

    def respond(request: dict[str, Any]) -> Reply:
        if (request.get("response_format") or {}).get("type") == "json_schema":
            message = "response_format 'json_schema' is not supported by this model"
            return error(400, message, kind="invalid_request_error")(request)
        return then(request)

    return respond


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output clean."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        fake = self.server.fake
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(error(404, f"unknown path {self.path}", kind="invalid_request_error")({}))
            return
        request = json.loads(raw or b"{}")
        fake.record(request, {k.lower(): v for k, v in self.headers.items()})
        reply = fake.next_responder()(request)
        if reply.delay_s and fake.stopping.wait(reply.delay_s):
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = body.encode()
        try:
            self.send_response(reply.status)
            if "Content-Type" not in reply.headers:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", "req_fake")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


class FakeOpenAI(Loopback):
    """Start with `with FakeOpenAI() as fake:`; point the SDK at `fake.base_url`."""

    def __init__(self, default: Responder | None = None) -> None:
        self.default: Responder = default or decision()
        self.queue: deque[Responder] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        super().__init__(_Handler)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def push(self, *responders: Responder) -> None:
        """Queue responders for the next requests (then `default` answers)."""
        with self._lock:
            self.queue.extend(responders)

    def next_responder(self) -> Responder:
        with self._lock:
            return self.queue.popleft() if self.queue else self.default

    def record(self, request: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
