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
    """Every setting, each described by the docstring under it: docs/configuration.md's
    table is made from these (`settings_table`, written by `scripts/docs`; a test fails when
    the page and the code differ). `shown_default` says the default where the value alone
    would not (one computed, or one that depends on another setting)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    telegram_bot_token: SecretStr = Field(json_schema_extra={"shown_default": "required"})
    """The token from @BotFather."""
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    """The Bot API server; the bot calls `{url}/bot{token}/METHOD`, so a self-hosted server
    works."""

    providers_file: Path | None = None
    """A TOML file listing several upstream accounts as one pool ([upstreams](upstreams.md));
    without it, the `PROVIDER_*` settings below make a pool of one."""
    provider: ProviderName = ProviderName.KIE
    """`kie`, `apikley`, `grok5imagine` or `grokimagineapi` ([upstreams](upstreams.md))."""
    provider_api_key: SecretStr | None = Field(
        default=None, json_schema_extra={"shown_default": "required without `PROVIDERS_FILE`"}
    )
    """The reseller's API key."""
    provider_base_url: AnyHttpUrl | None = Field(
        default=None, json_schema_extra={"shown_default": "per provider"}
    )
    """`https://api.kie.ai`, `https://api.apikley.ru`, `https://grok5imagine.com`,
    `https://grokimagineapi.com`."""
    provider_upload_url: AnyHttpUrl | None = None
    """The upstream's file upload API (kie: `https://kieai.redpandaai.co`), for users' own
    photos."""
    provider_webhook_hmac_key: SecretStr | None = None
    """The upstream account's callback signing key; when set, unsigned or badly signed
    callbacks get 401."""

    public_url: AnyHttpUrl | None = None
    """The address the world reaches the bot's HTTP endpoint at (e.g.
    `https://bot.example.com`); when set, results come by callback."""
    telegram_webhook: bool = False
    """`true`: Telegram updates come by webhook to the same endpoint (needs `PUBLIC_URL`)."""
    http_host: str = "0.0.0.0"
    """Where the bot's HTTP endpoint listens (put a TLS reverse proxy in front)."""
    http_port: int = Field(default=8080, ge=1, le=65535)
    """The HTTP endpoint's port."""

    database_path: Path = Path("data/imagine-bot.sqlite3")
    """The SQLite file; its folder is created."""
    database_url: SecretStr | None = None
    """`postgresql://user:password@host/db`: every replica on one PostgreSQL database instead
    of the SQLite file ([several replicas](replicas.md))."""
    database_pool_size: int = Field(default=10, ge=1, le=100)
    """Connections each replica keeps to PostgreSQL."""
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line, with `task_id`, `chat_id` and `provider` on a task's
    lines."""

    chat_daily_credits: int = Field(default=100, ge=0)
    """Credits every chat gets per UTC day (an operator's `/setquota` overrides it per
    chat)."""
    group_user_daily_credits: int = Field(default=0, ge=0)
    """A member's daily cap inside a group; `0`: none (group admins change it in
    `/settings`)."""
    cost_text_to_image: int = Field(default=5, ge=0)
    """Credits an `/imagine` (six images) costs, from the reseller's price list."""
    cost_image_to_video: int = Field(default=24, ge=0)
    """Credits an animation costs."""
    cost_text_to_video: int = Field(default=24, ge=0)
    """Credits a `/video` costs."""
    cost_upscale: int = Field(default=12, ge=0)
    """Credits an upscale costs."""
    allow_spicy: bool = True
    """`false` turns spicy mode off everywhere, whatever a chat chose."""
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    """Operators' Telegram user ids, as `1,2,3`: they may use `/grant`, `/setquota`,
    `/stats`, `/balance`, `/refund`, and get alerts."""
    max_concurrent_tasks: int = Field(default=50, ge=1)
    """The upstream account's limit of tasks running at once; more wait in line."""
    max_tasks_per_hour: int = Field(default=500, ge=1)
    """The upstream account's limit of tasks created per rolling hour; more wait in line."""
    task_timeout: float = Field(default=15 * 60, gt=0)
    """Seconds before a task that has not finished upstream is failed and refunded."""
    outage_wait: float = Field(default=120.0, ge=0)
    """Seconds a request waits in line while every account that could do it is out of
    rotation (a short outage) before it is refunded."""
    line_max_wait: float = Field(default=20 * 60, ge=0)
    """Seconds a new `/imagine` or `/video` may expect to wait in line (every replica's tasks
    counted, by the accounts' caps and recent tasks' durations); past it the request is
    refused with the expected wait and costs nothing; `0` for no limit."""
    task_lease: float = Field(default=20.0, ge=1)
    """Seconds a replica's heartbeat lasts (one row per replica, written every third of it);
    its claims on tasks hold while it does: a replica that dies has its tasks taken over
    within 4/3 of this."""
    max_tasks_held: int = Field(default=2000, ge=0)
    """Unfinished tasks one process drives at once (a waiting one is its row, an entry in the
    line and its job, no worker: 2,000 held in a replica of about 100 MB, see
    `bench.backlog`); the rest wait as rows, unclaimed, for whichever process has room, and
    a replica restarting with more lets go of the rest; `0` for no limit."""
    instance_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        json_schema_extra={"shown_default": "the host name"},
    )
    """This process's name on the tasks it claims and on its heartbeat; every replica needs
    its own, and a restarted process with the same name takes its tasks back at once."""

    star_packs: Annotated[tuple[Pack, ...], NoDecode] = Field(
        default=(), json_schema_extra={"shown_default": "none (no shop)"}
    )
    """Credits sold for Telegram Stars, `credits:stars` pairs: `100:50,500:200`
    ([payments](payments.md))."""
    payment_signing_key: SecretStr | None = Field(
        default=None, json_schema_extra={"shown_default": "derived from the bot token"}
    )
    """The key invoice payloads are signed with; set it to keep unpaid invoices valid across
    a token change."""
    paysupport_text: str | None = Field(
        default=None, json_schema_extra={"shown_default": "the built-in text"}
    )
    """What `/paysupport` answers (plain text)."""
    terms_text: str | None = Field(
        default=None, json_schema_extra={"shown_default": "the built-in text"}
    )
    """What `/terms` answers (plain text)."""

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


def settings_table() -> str:
    """Every setting as a Markdown table: its environment variable, its default, what it is
    (docs/configuration.md holds it; `scripts/docs` writes it there)."""
    rows = ["| name | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = extra.get("shown_default")
        default = str(shown) if shown is not None else _shown(field.default)
        about = " ".join((field.description or "").split())
        rows.append(f"| `{name.upper()}` | {default} | {about} |")
    return "\n".join(rows) + "\n"


def _shown(value: object) -> str:
    if value is None or value in ((), frozenset()):
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{str(value).rstrip('/')}`"
