"""The upstream accounts the bot may use: listed in the TOML file `PROVIDERS_FILE` names,
or, without it, the one account the `PROVIDER_*` settings describe (a pool of one)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.providers.base import Provider
from bot.providers.grok5imagine import Grok5ImagineProvider
from bot.providers.grokimagineapi import GrokImagineApiProvider
from bot.providers.kie import KieProvider
from bot.settings import DEFAULT_PROVIDER_BASE_URLS, ProviderName, Settings

# The documented limits of one account (docs/upstream/README.md).
DEFAULT_MAX_CONCURRENT = 50
DEFAULT_MAX_PER_HOUR = 500


class AccountsError(ValueError):
    """The accounts cannot be read; the message is one line, and names no secret."""


class AccountConfig(BaseModel):
    """One `[[account]]` of the file. Unknown keys are refused: a misspelt `max_concurent`
    must not silently leave the default in place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    provider: ProviderName
    api_key: SecretStr
    base_url: AnyHttpUrl | None = None
    upload_url: AnyHttpUrl | None = None
    webhook_hmac_key: SecretStr | None = None
    max_concurrent: int = Field(default=DEFAULT_MAX_CONCURRENT, ge=1)
    max_tasks_per_hour: int = Field(default=DEFAULT_MAX_PER_HOUR, ge=1)

    @property
    def base(self) -> str:
        return str(self.base_url or DEFAULT_PROVIDER_BASE_URLS[self.provider]).rstrip("/")

    @property
    def secrets(self) -> list[str]:
        values = [self.api_key, self.webhook_hmac_key]
        return [value.get_secret_value() for value in values if value is not None]


def load_accounts(settings: Settings) -> list[AccountConfig]:
    """The accounts, in the file's order; raises `AccountsError`."""
    if settings.providers_file is None:
        return [_from_settings(settings)]
    return read_accounts_file(settings.providers_file)


def read_accounts_file(path: Path) -> list[AccountConfig]:
    where = f"PROVIDERS_FILE {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AccountsError(f"{where}: cannot be read ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        # tomllib names the line and column, never the text there.
        raise AccountsError(f"{where}: not valid TOML ({error})") from None
    extra = sorted(set(document) - {"account"})
    if extra:
        raise AccountsError(f"{where}: unknown table or key {extra[0]!r} (only [[account]])")
    entries = document.get("account")
    if not isinstance(entries, list) or not entries:
        raise AccountsError(f"{where}: no [[account]] entries")
    accounts: list[AccountConfig] = []
    for number, entry in enumerate(entries, start=1):
        label = f"account {number}"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']})"
        try:
            account = AccountConfig.model_validate(entry)
        except ValidationError as error:
            raise AccountsError(f"{where}: {label}: {_problems(error)}") from None
        if any(account.name == earlier.name for earlier in accounts):
            raise AccountsError(f"{where}: {label}: the name {account.name!r} is used twice")
        accounts.append(account)
    return accounts


def build_provider(account: AccountConfig) -> Provider:
    match account.provider:
        case ProviderName.KIE | ProviderName.APIKLEY:
            return KieProvider(
                name=account.name,
                base_url=account.base,
                api_key=account.api_key,
                upload_url=str(account.upload_url) if account.upload_url else None,
            )
        case ProviderName.GROK5IMAGINE:
            return Grok5ImagineProvider(
                name=account.name, base_url=account.base, api_key=account.api_key
            )
        case ProviderName.GROKIMAGINEAPI:
            return GrokImagineApiProvider(
                name=account.name, base_url=account.base, api_key=account.api_key
            )


def _from_settings(settings: Settings) -> AccountConfig:
    """The pool of one: named after its provider, as the tasks made before the pool are."""
    if settings.provider_api_key is None:
        raise AccountsError("Invalid settings: PROVIDER_API_KEY (missing)")
    return AccountConfig(
        name=settings.provider.value,
        provider=settings.provider,
        api_key=settings.provider_api_key,
        base_url=settings.provider_base_url,
        upload_url=settings.provider_upload_url,
        webhook_hmac_key=settings.provider_webhook_hmac_key,
        max_concurrent=settings.max_concurrent_tasks,
        max_tasks_per_hour=settings.max_tasks_per_hour,
    )


def _problems(error: ValidationError) -> str:
    """Each field's problem, never its value (pydantic's `msg` does not quote the input)."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "entry"
        if item["type"] == "missing":
            problems.append(f"{field} missing")
        elif item["type"] == "extra_forbidden":
            problems.append(f"{field} is not a known key")
        else:
            problems.append(f"{field}: {item['msg']}")
    return "; ".join(problems)
