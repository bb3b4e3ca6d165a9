"""Typed, frozen settings read once from the environment and `.env`.

Secrets are `SecretStr`, so a repr, a log line or a traceback shows `**********`, never a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from botlib.errors import ConfigError

__all__ = ["Settings", "load_settings", "DEFAULT_SYMBOLS"]

DEFAULT_SYMBOLS = ("BTC/USD", "SOL/USD")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every knob of botlib, with its environment variable name and default."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_file=".env", validate_by_name=True, validate_by_alias=True
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
    live_confirm: str = Field("", validation_alias=_env("BOTLIB_LIVE_CONFIRM"))
    sim_cash: float = Field(100_000.0, gt=0, validation_alias=_env("BOTLIB_SIM_CASH"))
    sim_fee_rate: float = Field(0.0025, ge=0, lt=0.1, validation_alias=_env("BOTLIB_SIM_FEE"))
    sim_slippage_bps: float = Field(
        5.0, ge=0, lt=1000, validation_alias=_env("BOTLIB_SIM_SLIPPAGE_BPS")
    )
    max_drawdown_pct: float = Field(
        20.0, gt=0, le=100, validation_alias=_env("BOTLIB_MAX_DRAWDOWN_PCT")
    )
    max_daily_loss_pct: float = Field(
        5.0, gt=0, le=100, validation_alias=_env("BOTLIB_MAX_DAILY_LOSS_PCT")
    )
    max_position_pct: float = Field(
        25.0, gt=0, le=100, validation_alias=_env("BOTLIB_MAX_POSITION_PCT")
    )
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
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_model: str = Field("gpt-4o", min_length=1, validation_alias=_env("OPENAI_MODEL"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_timeout_s: float = Field(30.0, gt=0, le=600, validation_alias=_env("OPENAI_TIMEOUT"))
    openai_max_retries: int = Field(2, ge=0, le=10, validation_alias=_env("OPENAI_MAX_RETRIES"))
    llm_max_output_tokens: int = Field(
        700, ge=50, le=32_000, validation_alias=_env("BOTLIB_LLM_MAX_OUTPUT_TOKENS")
    )
    max_llm_usd_per_day: float = Field(
        5.0, ge=0, validation_alias=_env("BOTLIB_MAX_LLM_USD_PER_DAY")
    )
    llm_cache: Literal["off", "record", "replay"] = Field(
        "off", validation_alias=_env("BOTLIB_LLM_CACHE")
    )
    llm_prices: Path | None = Field(None, validation_alias=_env("BOTLIB_LLM_PRICES"))
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
