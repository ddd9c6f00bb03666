"""Settings, read once from `CARDCORE_*` environment variables (or a `.env` file)."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardcore.embedded_settings import parse_overrides

# Settings that were removed, and what to do instead. Ignoring one could put a server its
# operator believes to be a sandbox in front of live money, so it stops cardcore at start.
REMOVED_SETTINGS = {
    "sandbox": "test mode is a property of each program now, not of the server: remove "
    "CARDCORE_SANDBOX from the environment and from .env, and make a test program with "
    "`cardcore bootstrap --test` (its keys are ck_test_…, and only its credentials may use "
    "/v1/simulate/*). One server serves live and test programs at once.",
}


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise print every value it was given,
    # CARDCORE_MASTER_KEYS included.
    model_config = SettingsConfigDict(
        env_prefix="CARDCORE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: an embedded PostgreSQL "
            "is started under the data directory."
        ),
    )
    data_dir: Path = Field(
        default=Path(".cardcore"),
        description="Where the embedded PostgreSQL and other local state live.",
    )
    embedded_pg_settings: str = Field(
        default="",
        description="The embedded PostgreSQL's settings where they should differ from the ones "
        "cardcore computes for the machine: name=value,... (name= for PostgreSQL's default). "
        "fsync, synchronous_commit and full_page_writes cannot be turned off.",
    )
    master_keys: str | None = Field(
        default=None,
        description="Keys that encrypt secrets at rest: name:base64(32 bytes)[,...], last one "
        "encrypts. Unset: generated into the data directory (one machine only).",
    )
    cvk_a: str | None = Field(
        default=None,
        description="CVV key A, 16 hex digits. Unset: generated into the data directory.",
    )
    cvk_b: str | None = Field(
        default=None,
        description="CVV key B, 16 hex digits. Unset: generated into the data directory.",
    )
    issuing_processor: Literal["local"] = Field(
        default="local",
        description="Who makes PANs and plastics: `local` generates PANs and simulates the bureau.",
    )
    host: str = Field(default="127.0.0.1", description="Address `cardcore serve` binds to.")
    port: int = Field(default=8000, description="Port `cardcore serve` listens on.")
    workers: int = Field(default=1, ge=1, description="API worker processes for `cardcore serve`.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["json", "console"] = Field(
        default="json", description="`json` for machines, `console` for humans at a terminal."
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections per API process.")
    db_max_overflow: int = Field(default=0, ge=0, description="Extra connections under load.")
    db_lean_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Connections per API process for the authorization's lean path (default: "
        "two per CPU; more only queue inside PostgreSQL).",
    )
    db_statement_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="PostgreSQL statement_timeout for API connections (0 disables).",
    )
    idempotency_ttl_seconds: int = Field(
        default=24 * 3600, ge=60, description="How long an Idempotency-Key and its response live."
    )
    access_token_ttl_seconds: int = Field(
        default=15 * 60, ge=60, le=7200, description="Lifetime of a partner access token (JWT)."
    )
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600, ge=300, description="Lifetime of a refresh token."
    )
    session_ttl_seconds: int = Field(
        default=10 * 60,
        ge=60,
        le=7200,
        description="Lifetime of a cardholder session's access token.",
    )
    admin_token_ttl_seconds: int = Field(
        default=30 * 60, ge=60, le=7200, description="Lifetime of an admin's access token."
    )
    jwe_key_grace_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="After `cardcore keys rotate-jwe`, how long the old key still decrypts.",
    )
    run_worker: bool = Field(
        default=True,
        description="`cardcore serve` also runs the background worker in each API process. "
        "Turn off when `cardcore worker` runs separately.",
    )
    worker_concurrency: int = Field(
        default=4, ge=1, le=64, description="Jobs and webhook deliveries a worker runs at once."
    )
    worker_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for new work."
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=60, description="Time a webhook receiver has to answer."
    )
    webhooks_allow_http: bool = Field(
        default=False, description="Accept plain http:// webhook URLs (local development only)."
    )
    webhooks_allow_private_networks: bool = Field(
        default=False,
        description="Deliver to loopback, link-local and private addresses (local development "
        "only; otherwise refused, against SSRF).",
    )
    max_json_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        description="The largest request body, except document uploads: a larger one is 413.",
    )
    max_upload_body_bytes: int = Field(
        default=11_534_336,
        ge=1_024,
        description="The largest document upload body (multipart): a 10 MiB document and its "
        "framing fit the default of 11 MiB.",
    )
    api_key_touch_interval_seconds: int = Field(
        default=60,
        ge=0,
        description="An API key's last_used_at is written at most this often, to keep reads cheap.",
    )

    @field_validator("embedded_pg_settings")
    @classmethod
    def _check_embedded_pg_settings(cls, value: str) -> str:
        parse_overrides(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _refuse_removed(cls, data: Any) -> Any:
        # A .env file's unknown keys arrive here (prefix stripped); the environment's do not.
        given = {key.lower() for key in data} if isinstance(data, dict) else set()
        given |= {
            key.lower().removeprefix("cardcore_")
            for key in os.environ
            if key.lower().startswith("cardcore_")
        }
        for name, instead in REMOVED_SETTINGS.items():
            if name in given:
                raise ValueError(f"CARDCORE_{name.upper()} is no longer a setting: {instead}")
        return data


@lru_cache
def get_settings() -> Settings:
    return Settings()
