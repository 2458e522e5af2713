"""The bot's whole settings surface, read from the environment or a `.env` file.

Names are the environment variables in upper case (pydantic-settings matches them
case-insensitively). Secrets are `SecretStr`, so they print as `**********`.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.shop import Pack, parse_packs


class ProviderName(StrEnum):
    KIE = "kie"
    APIKLEY = "apikley"
    GROK5IMAGINE = "grok5imagine"
    GROKIMAGINEAPI = "grokimagineapi"


DEFAULT_PROVIDER_BASE_URLS: dict[ProviderName, str] = {
    ProviderName.KIE: "https://api.kie.ai",
    ProviderName.APIKLEY: "https://api.apikley.ru",
    ProviderName.GROK5IMAGINE: "https://grok5imagine.com",
    ProviderName.GROKIMAGINEAPI: "https://grokimagineapi.com",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    telegram_bot_token: SecretStr
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")

    # The upstream accounts: a TOML file of `[[account]]`s (see the README, "A pool of
    # upstream accounts"), or the one account the PROVIDER_* settings describe.
    providers_file: Path | None = None
    provider: ProviderName = ProviderName.KIE
    provider_api_key: SecretStr | None = None
    provider_base_url: AnyHttpUrl | None = None
    provider_upload_url: AnyHttpUrl | None = None
    provider_webhook_hmac_key: SecretStr | None = None

    public_url: AnyHttpUrl | None = None
    telegram_webhook: bool = False
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=1, le=65535)

    database_path: Path = Path("data/imagine-bot.sqlite3")
    # postgresql://user:password@host/db: every replica on one PostgreSQL database instead
    # of the SQLite file at DATABASE_PATH (see "Running several replicas" in the README).
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=100)
    log_format: Literal["text", "json"] = "text"

    chat_daily_credits: int = Field(default=100, ge=0)
    group_user_daily_credits: int = Field(default=0, ge=0)  # 0: no per-user cap
    cost_text_to_image: int = Field(default=5, ge=0)
    cost_image_to_video: int = Field(default=24, ge=0)
    cost_text_to_video: int = Field(default=24, ge=0)
    cost_upscale: int = Field(default=12, ge=0)
    allow_spicy: bool = True  # false: spicy mode is off everywhere, whatever a chat says
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    max_concurrent_tasks: int = Field(default=50, ge=1)
    max_tasks_per_hour: int = Field(default=500, ge=1)
    task_timeout: float = Field(default=15 * 60, gt=0)  # seconds before a task is given up
    # Seconds a request waits in line while every account that could do it is out of
    # rotation (a short outage) before it is refunded.
    outage_wait: float = Field(default=120.0, ge=0)
    # Seconds a new request may expect to wait in line (every replica's line together, by
    # the accounts' caps and recent tasks' durations); past it, the request is refused, free,
    # with the expected wait. 0: no limit.
    line_max_wait: float = Field(default=20 * 60, ge=0)
    # How long a replica's heartbeat lasts (written every third of it); its claims on tasks
    # hold while it does: a replica killed without warning has its tasks taken over within
    # 4/3 of this.
    task_lease: float = Field(default=20.0, ge=1)
    # Unfinished tasks one process drives at once (each a coroutine, about 17 KB while it
    # waits); the rest wait as rows for whichever process has room. 0: no limit.
    max_tasks_held: int = Field(default=2000, ge=0)
    # This process's name on the tasks it claims; every replica needs its own. The default,
    # the host's name, lets a restarted process take its own tasks back at once.
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1)

    # Credits for Telegram Stars: `credits:stars` pairs (`100:50,500:200`); empty: no shop.
    star_packs: Annotated[tuple[Pack, ...], NoDecode] = ()
    # Signs invoice payloads; by default derived from the bot token (change the token, and
    # invoices not yet paid are refused).
    payment_signing_key: SecretStr | None = None
    # The operator's own /paysupport and /terms texts (plain text); the catalog's otherwise.
    paysupport_text: str | None = None
    terms_text: str | None = None

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # "1, 2 3" from the environment; a list or set when built in code.
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(",", " ").split())
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("star_packs", mode="before")
    @classmethod
    def _packs(cls, value: object) -> object:
        return parse_packs(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("must start with postgresql:// (SQLite is DATABASE_PATH)")
        return value

    @field_validator("telegram_bot_token", "provider_api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _some_account(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        """An account is needed: PROVIDER_API_KEY, or a PROVIDERS_FILE of them. Reported as
        missing beside any other problem, so one start names everything there is to fix."""
        given = isinstance(data, dict) and any(
            data.get(name) not in (None, "") for name in ("provider_api_key", "providers_file")
        )
        missing: list[InitErrorDetails] = []
        if not given:
            missing = [{"type": "missing", "loc": ("provider_api_key",), "input": data}]
        try:
            settings = handler(data)
        except ValidationError as error:
            details: list[InitErrorDetails] = [
                {"type": e["type"], "loc": e["loc"], "input": e["input"], "ctx": e.get("ctx", {})}
                for e in error.errors()
            ]
            raise ValidationError.from_exception_data(error.title, details + missing) from None
        if missing:
            raise ValidationError.from_exception_data(cls.__name__, missing)
        return settings

    @model_validator(mode="after")
    def _webhook_needs_public_url(self) -> Settings:
        if self.telegram_webhook and self.public_url is None:
            raise ValueError("TELEGRAM_WEBHOOK=true needs PUBLIC_URL")
        return self

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction."""
        values = [
            self.telegram_bot_token,
            self.provider_api_key,
            self.provider_webhook_hmac_key,
            self.payment_signing_key,
            self.database_url,
        ]
        found = [value.get_secret_value() for value in values if value is not None]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            found += [password] if password else []
        return found

    @property
    def database(self) -> Path | str:
        """What `Database.open` opens: PostgreSQL's URL, else the SQLite file's path."""
        return self.database_url.get_secret_value() if self.database_url else self.database_path

    @property
    def payload_key(self) -> bytes:
        """The key invoice payloads are signed with."""
        if self.payment_signing_key is not None:
            return self.payment_signing_key.get_secret_value().encode()
        token = self.telegram_bot_token.get_secret_value().encode()
        return hmac.new(token, b"imagine-bot invoice payloads", hashlib.sha256).digest()

    @property
    def public_base(self) -> str | None:
        return str(self.public_url).rstrip("/") if self.public_url else None

    @property
    def telegram_base(self) -> str:
        return str(self.telegram_api_url).rstrip("/")


def describe_settings_error(error: ValidationError) -> str:
    """One line naming every setting that is missing or malformed, never its value."""
    problems = []
    for item in error.errors():
        name = "_".join(str(part) for part in item["loc"][:1]).upper() or "SETTINGS"
        reason = "missing" if item["type"] == "missing" else item["msg"]
        if not item["loc"]:  # a rule across settings names its own
            problems.append(reason.removeprefix("Value error, "))
            continue
        problems.append(f"{name} ({reason})")
    return "Invalid settings: " + "; ".join(problems)
