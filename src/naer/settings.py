"""One configuration object for the whole platform: environment variables prefixed ``NAER_``."""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Embedded defaults everywhere; set a variable to point Nær at real infrastructure."""

    # frozen: one object is shared by every caller in the same environment (get_settings)
    model_config = SettingsConfigDict(env_prefix="NAER_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("data"), description="Where data sets and embedded stores live.")
    today_text: str | None = Field(
        default=None,
        alias="NAER_TODAY",
        description="The demo's today: the clock starts there and runs on (a date, or a date-time with its "
        "zone); unset: the data folder's `today` file if there is one, else real time.",
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Processes used by parallel jobs such as `naer synth`.",
    )
    max_body_mb: int = Field(
        default=16, ge=1, description="Largest request body the FHIR API reads (MB); bulk data goes by file."
    )
    max_import_mb: int = Field(
        default=1024,
        ge=1,
        description="Largest NDJSON body POST /fhir/$import accepts (MB), spooled to disk.",
    )
    allowed_hosts: str = Field(
        default="127.0.0.1,localhost,::1",
        description="Host names the server answers to, comma-separated (others get 400: DNS rebinding); "
        "add the deployment's own name behind a proxy; * answers to any.",
    )
    cors_origins: str = Field(
        default="",
        description="Web origins (https://app.example.dk) whose pages may call the API from a browser, "
        "comma-separated; none by default (CORS off).",
    )
    max_depth: int = Field(
        default=48, ge=8, le=200, description="Deepest nesting of objects and lists a JSON body may have."
    )
    export_ttl: int = Field(
        default=24, ge=1, le=24 * 30, description="Hours a bulk export's files are kept before deletion."
    )
    max_array: int = Field(
        default=10_000, ge=100, description="Most items one list of a JSON body may hold (FHIR repeats)."
    )
    max_index_rows: int = Field(
        default=20_000, ge=100, description="Most search index rows one resource may make."
    )
    messaging_outbox: Annotated[Path | None, BeforeValidator(lambda v: v or None)] = Field(
        default=None,
        description="Folder where MedCom messages to units outside this Nær are written for the VANS "
        "gateway to pick up; unset: such messages wait in the outbox (shown on the messages page).",
    )
    database_url: str | None = Field(
        default=None, description="Store URL (PostgreSQL); the embedded SQLite file when unset."
    )
    indicator_results: Path | None = Field(
        default=None,
        description="The indicator results the dashboard shows (Parquet from `naer indicators --out`); "
        "default DATA_DIR/indicators.parquet.",
    )

    risk_results: Path | None = Field(
        default=None,
        description="The risk folder the worklist page shows (worklist.parquet from `naer risk worklist`, "
        "report/ from `naer risk evaluate`); default DATA_DIR/risk.",
    )

    issuer: str = Field(
        default="urn:naer:local",
        description="The issuer Nær names in the tokens it signs itself (embedded sign-in); set it to the "
        "server's public URL in a deployment.",
    )
    audience: str = Field(default="naer-fhir", description="The audience every access token must name.")
    oidc_issuer: str | None = Field(
        default=None,
        description="The region's identity provider (OpenID Connect issuer) whose tokens are accepted "
        "beside Nær's own; its subjects map to accounts (`naer users add --issuer --subject`).",
    )
    oidc_jwks: str | None = Field(
        default=None, description="That provider's signing keys: a JWKS URL (https://...) or file."
    )
    oidc_audience: str | None = Field(
        default=None, description="The audience that provider's tokens name (default NAER_AUDIENCE)."
    )
    token_minutes: int = Field(
        default=60, ge=1, le=24 * 60, description="How long a token Nær signs is valid (minutes)."
    )
    signing_key: Path | None = Field(
        default=None,
        description="Nær's own signing key (EC P-256, JWK); made on first start when missing; default "
        "DATA_DIR/keys/signing-key.json.",
    )
    session_hours: int = Field(
        default=8, ge=1, le=24, description="How long a sign-in to the pages lasts (hours)."
    )

    def results_path(self) -> Path:
        return self.indicator_results or self.data_dir / "indicators.parquet"

    def risk_path(self) -> Path:
        return self.risk_results or self.data_dir / "risk"

    def today(self) -> datetime | None:
        """The demo's "today" (NAER_TODAY, else the data folder's ``today`` file), or None: real time."""
        from naer import clock
        from naer.errors import UserError

        text = self.today_text
        if text is None:
            found = self.data_dir / "today"
            if not found.is_file():
                return None
            text = found.read_text(encoding="utf-8")[:100]
        try:
            return clock.parse_today(text)
        except ValueError as error:
            raise UserError(f"NAER_TODAY / {self.data_dir / 'today'}: {error}") from None

    def key_path(self) -> Path:
        """Nær's own signing key (made on first start, readable by its owner only)."""
        return self.signing_key or self.data_dir / "keys" / "signing-key.json"


def get_settings() -> Settings:
    """The settings for the environment as it is now: read again whenever a ``NAER_`` variable changed
    (tests change them between calls), else the same object (reading them costs milliseconds, and every
    write asks for its limits)."""
    return _settings(tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("NAER_"))))


@lru_cache(maxsize=8)
def _settings(_: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()
