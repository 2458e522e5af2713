"""Upstream clients, one module per dialect, behind `Provider`."""

from __future__ import annotations

from bot.providers.base import (
    ErrorKind,
    GenerationRequest,
    Provider,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
)
from bot.providers.kie import KieProvider
from bot.settings import ProviderName, Settings

__all__ = [
    "ErrorKind",
    "GenerationRequest",
    "KieProvider",
    "Provider",
    "ProviderError",
    "UpstreamState",
    "UpstreamStatus",
    "build_provider",
]


def build_provider(settings: Settings) -> Provider:
    if settings.provider in (ProviderName.KIE, ProviderName.APIKLEY):
        return KieProvider(
            name=settings.provider.value,
            base_url=settings.provider_base,
            api_key=settings.provider_api_key,
            upload_url=str(settings.provider_upload_url) if settings.provider_upload_url else None,
        )
    raise NotImplementedError(
        f"PROVIDER={settings.provider.value} is not supported yet; use kie or apikley"
    )
