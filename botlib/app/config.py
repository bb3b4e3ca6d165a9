"""Typed, frozen settings read once from the environment and `.env`.

Secrets are `SecretStr`, so a repr, a log line or a traceback shows `**********`, never a key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from botlib.core.risk import RiskLimits
from botlib.errors import ConfigError
from botlib.models import allowed_range, field_bounds

__all__ = ["Settings", "load_settings", "DEFAULT_SYMBOLS"]

DEFAULT_SYMBOLS = ("BTC/USD", "SOL/USD")
_PAIR = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{2,10}")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


def _limit(name: str, env: str) -> Any:
    """A setting that is a `RiskLimits` field: default and bounds come from there (one place)."""
    info = RiskLimits.model_fields[name]
    return Field(info.default, validation_alias=_env(env), **field_bounds(info))


class Settings(BaseSettings):
    """Every knob of botlib, with its environment variable name and default.

    Numbers must be finite (`BOTLIB_SIM_CASH=inf` once started a simulator worth inf).
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        env_file=".env",
        validate_by_name=True,
        validate_by_alias=True,
        allow_inf_nan=False,
    )

    mode: Literal["sim", "paper", "live"] | None = Field(None, validation_alias=_env("BOTLIB_MODE"))
    analyst: Literal["rules", "openai"] | None = Field(
        None, validation_alias=_env("BOTLIB_ANALYST")
    )
    db_path: Path = Field(Path("data/botlib.db"), validation_alias=_env("BOTLIB_DB"))
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_SYMBOLS, validation_alias=_env("BOTLIB_SYMBOLS")
    )
    log_json: bool = Field(False, validation_alias=_env("BOTLIB_LOG_JSON"))
    log_level: str = Field("INFO", validation_alias=_env("BOTLIB_LOG_LEVEL"))
    log_file: Path | None = Field(None, validation_alias=_env("BOTLIB_LOG_FILE"))
    live_confirm: str = Field("", validation_alias=_env("BOTLIB_LIVE_CONFIRM"))
    sim_cash: float = Field(100_000.0, gt=0, validation_alias=_env("BOTLIB_SIM_CASH"))
    sim_fee_rate: float = Field(0.0025, ge=0, lt=0.1, validation_alias=_env("BOTLIB_SIM_FEE"))
    sim_slippage_bps: float = Field(
        5.0, ge=0, lt=1000, validation_alias=_env("BOTLIB_SIM_SLIPPAGE_BPS")
    )
    max_drawdown_pct: float = _limit("max_drawdown_pct", "BOTLIB_MAX_DRAWDOWN_PCT")
    max_daily_loss_pct: float = _limit("max_daily_loss_pct", "BOTLIB_MAX_DAILY_LOSS_PCT")
    max_position_pct: float = _limit("max_position_pct", "BOTLIB_MAX_POSITION_PCT")
    failure_alert_after: int = Field(
        3, ge=1, le=100, validation_alias=_env("BOTLIB_FAILURE_ALERT_AFTER")
    )
    alert_webhook_url: SecretStr | None = Field(
        None, validation_alias=_env("BOTLIB_ALERT_WEBHOOK_URL")
    )
    alpaca_api_key: SecretStr | None = Field(None, validation_alias=_env("ALPACA_API_KEY"))
    alpaca_secret_key: SecretStr | None = Field(None, validation_alias=_env("ALPACA_SECRET_KEY"))
    alpaca_trading_url: str | None = Field(None, validation_alias=_env("ALPACA_TRADING_URL"))
    alpaca_data_url: str | None = Field(None, validation_alias=_env("ALPACA_DATA_URL"))
    alpaca_timeout_s: float = Field(10.0, gt=0, le=120, validation_alias=_env("ALPACA_TIMEOUT"))
    alpaca_fill_wait_s: float = Field(10.0, ge=0, le=300, validation_alias=_env("BOTLIB_FILL_WAIT"))
    venue_stops: bool = Field(True, validation_alias=_env("BOTLIB_VENUE_STOPS"))
    stop_limit_band_pct: float = Field(
        0.5, gt=0, le=20, validation_alias=_env("BOTLIB_STOP_LIMIT_BAND_PCT")
    )
    guard_seconds: float = Field(15.0, ge=1, le=3600, validation_alias=_env("BOTLIB_GUARD_SECONDS"))
    limit_expiry_bars: int = Field(
        3, ge=1, le=1000, validation_alias=_env("BOTLIB_LIMIT_EXPIRY_BARS")
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_model: str = Field("gpt-4o", min_length=1, validation_alias=_env("OPENAI_MODEL"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_timeout_s: float = Field(30.0, gt=0, le=600, validation_alias=_env("OPENAI_TIMEOUT"))
    openai_max_retries: int = Field(2, ge=0, le=10, validation_alias=_env("OPENAI_MAX_RETRIES"))
    llm_max_output_tokens: int = Field(
        700, ge=50, le=32_000, validation_alias=_env("BOTLIB_LLM_MAX_OUTPUT_TOKENS")
    )
    max_llm_usd_per_day: float = _limit("llm_budget_usd", "BOTLIB_MAX_LLM_USD_PER_DAY")
    llm_cache: Literal["off", "record", "replay"] = Field(
        "off", validation_alias=_env("BOTLIB_LLM_CACHE")
    )
    llm_prices: Path | None = Field(None, validation_alias=_env("BOTLIB_LLM_PRICES"))
    arena_file: Path | None = Field(None, validation_alias=_env("BOTLIB_ARENA_FILE"))
    shadows: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("BOTLIB_SHADOWS")
    )
    shadow_every: int = Field(1, ge=1, le=10_000, validation_alias=_env("BOTLIB_SHADOW_EVERY"))
    dashboard_ai_logs: bool = Field(False, validation_alias=_env("BOTLIB_DASHBOARD_AI_LOGS"))
    tick_notebooks: bool = Field(True, validation_alias=_env("BOTLIB_TICK_NOTEBOOKS"))
    cycle_notebook: Path | None = Field(None, validation_alias=_env("BOTLIB_CYCLE_NOTEBOOK"))
    kernel: str = Field("botlib", min_length=1, validation_alias=_env("BOTLIB_KERNEL"))
    runs_dir: Path = Field(Path("runs"), validation_alias=_env("BOTLIB_RUNS_DIR"))
    runs_keep_days: int = Field(14, ge=1, le=3650, validation_alias=_env("BOTLIB_RUNS_KEEP_DAYS"))
    runs_keep_hours: int = Field(
        24, ge=0, le=87_600, validation_alias=_env("BOTLIB_RUNS_KEEP_HOURS")
    )

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in value.split(",") if s.strip())
        return value

    @field_validator("shadows", mode="before")
    @classmethod
    def _split_shadows(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator("symbols")
    @classmethod
    def _pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse what no venue lists (`BTC/USD;SOL/USD`, `BTCUSD`, nothing) before it becomes
        an asset: the simulator would otherwise trade any name it is given."""
        if not value:
            raise ValueError("needs at least one pair, e.g. BTC/USD,SOL/USD")
        wrong = [s for s in value if not _PAIR.fullmatch(s)]
        if wrong:
            names = ", ".join(map(repr, wrong))
            raise ValueError(f"{names}: not a BASE/QUOTE pair like BTC/USD (comma-separated)")
        return value

    @property
    def limits(self) -> RiskLimits:
        """Return the risk limits the environment sets (before any operator override)."""
        return RiskLimits(
            max_position_pct=self.max_position_pct,
            max_daily_loss_pct=self.max_daily_loss_pct,
            max_drawdown_pct=self.max_drawdown_pct,
            llm_budget_usd=self.max_llm_usd_per_day,
        )

    @property
    def resolved_mode(self) -> str:
        """Return `BOTLIB_MODE`, or `sim` without Alpaca keys and `paper` with them."""
        if self.mode:
            return self.mode
        return "paper" if self.alpaca_api_key and self.alpaca_secret_key else "sim"

    @property
    def resolved_analyst(self) -> str:
        """Return `BOTLIB_ANALYST`, or `rules` without an OpenAI key and `openai` with one."""
        if self.analyst:
            return self.analyst
        return "openai" if self.openai_api_key else "rules"

    def secret_values(self) -> list[str]:
        """List the secret strings, so the log redactor can blank them wherever they appear."""
        secrets = (
            self.alpaca_api_key,
            self.alpaca_secret_key,
            self.openai_api_key,
            self.alert_webhook_url,  # a Slack-style webhook URL carries its own token
        )
        return [s.get_secret_value() for s in secrets if s and s.get_secret_value()]


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read settings from the environment (and `env_file`); raise ConfigError naming the field."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg, arg-type]
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def _problem(err: Any) -> str:
    """Name the variable, pydantic's complaint and, for a number, the range that is allowed."""
    where = ".".join(str(p) for p in err["loc"]) or "settings"
    info = _FIELDS_BY_NAME.get(where)
    bounds = allowed_range(info) if info else ""
    return f"{where}: {err['msg']}" + (f" (allowed: {bounds})" if bounds else "")


def _names(name: str, info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else []
    return [name, *(c for c in choices if isinstance(c, str))]


# a refusal's location is the variable read (BOTLIB_SIM_CASH) or the override's field name
_FIELDS_BY_NAME = {
    key: info for name, info in Settings.model_fields.items() for key in _names(name, info)
}
