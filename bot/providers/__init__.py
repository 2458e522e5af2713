"""Upstream clients, one module per dialect, behind `Provider`."""

from __future__ import annotations

from bot.providers.accounts import AccountConfig, AccountsError, build_provider, load_accounts
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

__all__ = [
    "AccountConfig",
    "AccountsError",
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
    "load_accounts",
]
