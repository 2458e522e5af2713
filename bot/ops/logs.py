"""Logging: one line per event, plain or JSON (`LOG_FORMAT=json`, python-json-logger), with
task id, chat id and upstream account where there is a task; secrets masked in every record.

Masking happens where records are made (a log record factory), not in one handler, so no
handler, third-party logger or formatted traceback can carry a secret out: the bot token,
the API key, the webhook and HMAC secrets, and the secrets inside URLs (callback paths,
served files, the Telegram webhook path, Bot API URLs).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

MASK = "***"

# Secrets that live in URLs: keep the shape of the URL, hide the secret part.
_URL_SECRETS = (
    re.compile(r"(/callbacks/\d+/)[A-Za-z0-9_-]+"),
    re.compile(r"(/files/)[A-Za-z0-9_-]{20,}"),
    re.compile(r"(/telegram/)[A-Za-z0-9_-]{20,}"),
    re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"),
)
TASK_FIELDS = ("task_id", "chat_id", "account")


class _Redactor:
    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self._installed = False

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            known = set(self._secrets) | {s for s in secrets if len(s) >= 6}
            self._secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _URL_SECRETS:
            text = pattern.sub(rf"\1{MASK}", text)
        return text

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return
            self._installed = True
        make_record = logging.getLogRecordFactory()

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_info:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None  # the text above is all a handler may show
            return record

        logging.setLogRecordFactory(redacting_factory)


_redactor = _Redactor()


def protect_secrets(secrets: Iterable[str]) -> None:
    """Mask these secrets (and secrets in URLs) in every log record from now on."""
    _redactor.add(secrets)
    _redactor.install()


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_http_logs()


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs carry the bot token."""
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def task_logger(
    logger: logging.Logger, task_id: int, chat_id: int, account: str
) -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records carry the task's id, chat and account (fields in JSON)."""
    return logging.LoggerAdapter(
        logger, {"task_id": task_id, "chat_id": chat_id, "account": account}
    )
