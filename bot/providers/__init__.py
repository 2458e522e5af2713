"""Upstream clients, one module per dialect, behind `Provider`."""

from __future__ import annotations

from bot.providers.base import (
    Capabilities,
    ErrorKind,
    GenerationRequest,
    Provider,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
)
from bot.providers.grok5imagine import Grok5ImagineProvider
from bot.providers.grokimagineapi import GrokImagineApiProvider
from bot.providers.kie import KieProvider
from bot.settings import ProviderName, Settings

__all__ = [
    "Capabilities",
    "ErrorKind",
    "GenerationRequest",
    "Grok5ImagineProvider",
    "GrokImagineApiProvider",
    "KieProvider",
    "Provider",
    "ProviderError",
    "UpstreamState",
    "UpstreamStatus",
    "build_provider",
]


def build_provider(settings: Settings) -> Provider:
    match settings.provider:
        case ProviderName.KIE | ProviderName.APIKLEY:
            upload = settings.provider_upload_url
            return KieProvider(
                name=settings.provider.value,
                base_url=settings.provider_base,
                api_key=settings.provider_api_key,
                upload_url=str(upload) if upload else None,
            )
        case ProviderName.GROK5IMAGINE:
            return Grok5ImagineProvider(
                base_url=settings.provider_base, api_key=settings.provider_api_key
            )
        case ProviderName.GROKIMAGINEAPI:
            return GrokImagineApiProvider(
                base_url=settings.provider_base, api_key=settings.provider_api_key
            )
