"""Analysts as configuration: the named analysts of an arena, in one TOML file, validated.

The arena compares several analysts on the same market; which ones, and how each is set up, is
data, not code. One file names them, each with a `kind`, and pydantic checks every field, so a
typo is an error naming the file, the analyst and the field rather than a silently ignored line.
Nothing here builds an analyst (no model SDK is imported): another module turns a spec into one.

```toml
[analysts.rules]
kind = "rules"                 # the built-in rules analyst

[analysts.buy_and_hold]
kind = "buy_and_hold"          # baseline: buys once, holds

[analysts.flat]
kind = "flat"                  # baseline: never trades

[analysts.sma]
kind = "sma_cross"             # baseline: SMA(fast) crossing SMA(slow), fast < slow
fast = 10
slow = 30

[analysts.gpt4o]
kind = "llm"
model = "gpt-4o"
base_url = "https://api.openai.com/v1"   # optional; any OpenAI-compatible endpoint
key_env = "OPENAI_API_KEY"               # the NAME of the variable holding the key, never the key
temperature = 0.2                        # optional, 0 to 2
prompt_variant = "default"               # optional: default or brief (a third of the tokens)
price = { input_per_1m = 2.5, output_per_1m = 10.0, cached_input_per_1m = 1.25 }  # optional
training_cutoff = "2023-10-01"           # optional; later backtest dates are free of leakage
multi_timeframe = false                  # optional: true adds the 4h and 1d structure
```

Analyst names are 1-40 lowercase letters, digits, `_` or `-`. Keys never enter the file: an LLM
spec names an environment variable (`key_env`) and `LlmSpec.llm_config` reads it into a
`SecretStr` when the analyst is built. A spec's `price` (USD per 1M tokens) replaces the built-in
price of its model (`LlmSpec.price_table`). Without a file, `default_arena` keeps what a
single-analyst setup had: the rules analyst, with the two baselines beside it.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from botlib.analysts.factory import LlmConfig
from botlib.analysts.llm import CacheMode
from botlib.analysts.pricing import Price, PriceTable
from botlib.analysts.prompt import PROMPT_VARIANTS
from botlib.errors import ConfigError

__all__ = [
    "KINDS",
    "ArenaConfig",
    "BuyAndHoldSpec",
    "FlatSpec",
    "LlmSpec",
    "PriceSpec",
    "RulesSpec",
    "SmaCrossSpec",
    "Spec",
    "default_arena",
    "load_arena",
]

KINDS = ("rules", "buy_and_hold", "flat", "sma_cross", "llm")
CACHE_MODES = ("off", "record", "replay")
_NAME = re.compile(r"[a-z0-9_-]{1,40}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# what API keys start with (OpenAI/Anthropic, Groq, xAI, Hugging Face, Google, Perplexity, ...)
_KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "hf_", "AIza", "pplx-", "r8_", "Bearer ")
_LOCAL_KEY = "unused-local"  # the OpenAI client wants some key; a loopback server ignores it


class _Spec(BaseModel):
    """What every spec shares: frozen, finite numbers, and an unknown field is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def describe(self) -> str:
        """Return a one-line human description (never a secret: a spec holds none)."""
        raise NotImplementedError


class RulesSpec(_Spec):
    """The built-in rules analyst (no key, no network)."""

    kind: Literal["rules"] = "rules"

    def describe(self) -> str:
        return "rules: the built-in trend/momentum rules"


class BuyAndHoldSpec(_Spec):
    """Baseline: buys once, then holds."""

    kind: Literal["buy_and_hold"] = "buy_and_hold"

    def describe(self) -> str:
        return "buy_and_hold baseline: buys once, holds"


class FlatSpec(_Spec):
    """Baseline: never trades (cash only)."""

    kind: Literal["flat"] = "flat"

    def describe(self) -> str:
        return "flat baseline: never trades"


class SmaCrossSpec(_Spec):
    """Baseline: `SmaCross(fast, slow)`, buys the golden cross and sells the death cross."""

    kind: Literal["sma_cross"] = "sma_cross"
    fast: int = Field(default=10, ge=1, le=10_000)
    slow: int = Field(default=30, ge=2, le=10_000)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossSpec:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self

    def describe(self) -> str:
        return f"sma_cross baseline: SMA({self.fast}) crossing SMA({self.slow})"


class PriceSpec(BaseModel):
    """USD per 1M tokens; cached input defaults to the input price."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)
    read_on: str = Field(default="arena file", min_length=1, max_length=40)

    def price(self) -> Price:
        cached = self.input_per_1m if self.cached_input_per_1m is None else self.cached_input_per_1m
        return Price(self.input_per_1m, cached, self.output_per_1m, self.read_on)


class LlmSpec(_Spec):
    """A model behind an OpenAI-compatible endpoint; the key comes from the `key_env` variable.

    `temperature`, `multi_timeframe` and `prompt_variant` go to its `LlmConfig`;
    `training_cutoff` is carried here for the results (the leaderboard's warning).
    """

    kind: Literal["llm"] = "llm"
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = None
    key_env: str
    temperature: float | None = Field(default=None, ge=0, le=2)
    prompt_variant: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    price: PriceSpec | None = None
    training_cutoff: date | None = None
    multi_timeframe: bool = False

    @field_validator("prompt_variant")
    @classmethod
    def _variant(cls, value: str) -> str:
        if value not in PROMPT_VARIANTS:
            raise ValueError(f"unknown prompt variant: use one of {', '.join(PROMPT_VARIANTS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value != value.strip() or not value.strip():
            raise ValueError("a model name without surrounding spaces, e.g. gpt-4o")
        return value

    @field_validator("key_env")
    @classmethod
    def _key_env(cls, value: str) -> str:
        """A variable's name; the value itself is never echoed (it may be a pasted key)."""
        if _looks_like_key(value):
            raise ValueError(
                "this looks like an API key, not a variable name: never put a key in this file;"
                " set it in the environment (or .env) and put the variable's name here,"
                ' e.g. key_env = "OPENAI_API_KEY"'
            )
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "not an environment variable name (letters, digits and _, not starting with"
                ' a digit), e.g. key_env = "OPENAI_API_KEY"'
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http(s) URL, e.g. https://api.openai.com/v1")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL: put the key in the variable key_env names")
        return value

    def describe(self) -> str:
        where = self.base_url or "the OpenAI default endpoint"
        return f"llm {self.model} at {where} (key from {self.key_env})"

    @property
    def is_local(self) -> bool:
        """True for a loopback endpoint (Ollama, vLLM on this machine), which needs no key."""
        host = urlsplit(self.base_url).hostname if self.base_url else None
        if host is None:
            return False
        if host == "localhost":
            return True
        try:
            return ip_address(host).is_loopback
        except ValueError:
            return False

    def llm_config(
        self, environ: Mapping[str, str], cache: str = "off", budget_usd: float = 5.0
    ) -> LlmConfig:
        """Return the `LlmConfig` for this spec, the key read from `environ[key_env]`.

        A missing key is allowed in cache "replay" mode (answers come from recorded responses)
        and for a loopback endpoint (it ignores the key); otherwise a ConfigError names the
        variable, never a value. `prices` stays None: the spec's price is `price_table()`.
        """
        if cache not in CACHE_MODES:
            raise ConfigError(f"llm cache {cache!r}: use one of {', '.join(CACHE_MODES)}")
        if not math.isfinite(budget_usd) or budget_usd < 0:
            raise ConfigError("llm budget_usd: a finite number of USD >= 0")
        key = environ.get(self.key_env, "").strip()
        if not key and self.is_local:
            key = _LOCAL_KEY
        if not key and cache != "replay":
            raise ConfigError(
                f"{self.describe()}: the environment variable {self.key_env} is not set;"
                " set it (in the environment or .env), or use the cache in replay mode to answer"
                " from recorded responses only"
            )
        config = LlmConfig(
            api_key=SecretStr(key) if key else None,
            model=self.model,
            base_url=self.base_url,
            cache=cast(CacheMode, cache),
            budget_usd=budget_usd,
        )
        config = replace(config, multi_timeframe=self.multi_timeframe,
                         prompt_variant=self.prompt_variant,
                         price=None if self.price is None else self.price.price())  # fmt: skip
        return config if self.temperature is None else replace(config, temperature=self.temperature)

    def price_table(self, base: PriceTable | None = None) -> PriceTable:
        """Return `base` (default: the built-in prices) with this spec's price for its model."""
        prices = dict((base or PriceTable()).prices)
        if self.price is not None:
            prices[self.model] = self.price.price()
        return PriceTable(prices)


Spec = Annotated[
    RulesSpec | BuyAndHoldSpec | FlatSpec | SmaCrossSpec | LlmSpec, Field(discriminator="kind")
]


def arena_from(path: Path | str | None) -> ArenaConfig:
    """The arena file at `path`, or `default_arena()` when there is none."""
    return load_arena(path) if path else default_arena()


class ArenaConfig(BaseModel):
    """The named analysts of an arena, in the file's order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    analysts: dict[str, Spec]

    @field_validator("analysts", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if not value:
            raise ValueError('at least one analyst is needed, e.g. [analysts.rules] kind = "rules"')
        wrong = [name for name in value if not (isinstance(name, str) and _NAME.fullmatch(name))]
        if wrong:
            names = ", ".join(map(repr, wrong))
            raise ValueError(f"analyst name {names}: use 1-40 lowercase letters, digits, _ or -")
        return value

    def select(self, names: list[str]) -> dict[str, Spec]:
        """Return the analysts called `names`, in that order; ConfigError for an unknown one."""
        known = ", ".join(self.analysts)
        if not names:
            raise ConfigError(f"no analyst selected; known: {known}")
        unknown = ", ".join(repr(n) for n in names if n not in self.analysts)
        if unknown:
            raise ConfigError(f"unknown analyst {unknown}; known: {known}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"analyst {', '.join(map(repr, twice))} selected twice")
        return {name: self.analysts[name] for name in names}


def default_arena() -> ArenaConfig:
    """Return the arena without a file: the rules analyst beside the buy-and-hold and flat
    baselines, so a setup from before the arena keeps working."""
    return ArenaConfig(
        analysts={"rules": RulesSpec(), "buy_and_hold": BuyAndHoldSpec(), "flat": FlatSpec()}
    )


def load_arena(path: Path | str) -> ArenaConfig:
    """Read and validate the arena file at `path`; ConfigError naming file, analyst and field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such arena file (arena.example.toml shows the format)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the arena file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return ArenaConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None


def _looks_like_key(value: str) -> bool:
    """A known key prefix, or a long mix of upper case, lower case and digits (no name is)."""
    if value.startswith(_KEY_PREFIXES):
        return True
    mixed = [any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit)]
    return len(value) >= 24 and all(mixed)


def _problem(err: Any) -> str:
    """Say where (analyst and field) and what, never the input (it may be a pasted key)."""
    loc = [str(p) for p in err["loc"]]
    if loc == ["analysts"] and err["type"] == "missing":
        return 'no analysts: add one, e.g. [analysts.rules] kind = "rules"'
    if len(loc) < 2 or loc[0] != "analysts":
        return f"{'.'.join(loc) or 'file'}: {_message(err)}"
    name, rest = loc[1], loc[2:]
    if rest and rest[0] in KINDS:  # the union's tag, which the reader did not write
        rest = rest[1:]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        rest = ["kind"]
    where = f"analyst {name!r}: " + (f"{'.'.join(rest)}: " if rest else "")
    return where + _message(err)


def _message(err: Any) -> str:
    kinds = ", ".join(KINDS)
    kind = err["type"]
    if kind == "union_tag_invalid":
        return f"unknown kind {err['ctx']['tag']!r}; use one of {kinds}"
    if kind == "union_tag_not_found":
        return f"field required; use one of {kinds}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    field = str(err["loc"][-1]).lower()
    if kind == "extra_forbidden" and "key" in field:
        msg += "; never put a key in this file: name its environment variable in key_env"
    return msg
