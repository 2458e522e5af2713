"""Secrets and signatures on the bot's HTTP endpoint (pure functions).

Upstream callbacks may be HMAC-signed: `X-Webhook-Signature` is
base64(HMAC-SHA256(key, taskId + "." + timestamp)), `X-Webhook-Timestamp` Unix seconds.
Only the task id is signed, never the body, which is why a callback is only a hint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# How far a callback's timestamp may be from our clock, either way.
SIGNATURE_WINDOW_SECONDS = 300


def callback_signature(key: str, upstream_task_id: str, timestamp: str) -> str:
    digest = hmac.new(
        key.encode(), f"{upstream_task_id}.{timestamp}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def callback_signature_valid(
    key: str,
    upstream_task_id: str,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float,
    window: float = SIGNATURE_WINDOW_SECONDS,
) -> bool:
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > window:
        return False
    expected = callback_signature(key, upstream_task_id, timestamp)
    return hmac.compare_digest(expected.encode(), signature.encode())


def secrets_match(expected: str | None, given: str) -> bool:
    """Constant-time comparison of a stored secret with one from a request."""
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def telegram_webhook_secret(bot_token: str) -> str:
    """The webhook path and `secret_token` for Telegram: derived from the bot token, so it
    stays the same across restarts and differs between bots; it reveals nothing of the token."""
    return hmac.new(bot_token.encode(), b"imagine-bot telegram webhook", hashlib.sha256).hexdigest()
