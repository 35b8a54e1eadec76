"""Keeping secrets out of logs: the access log shows paths with their query strings, and
clients send passwords (CDRouter's `/authenticate`) and tokens (`?token=`) there."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETER = re.compile(r"((?:^|[?&])(?:password|token|api-token)=)[^&\s\"]*", re.I)
ACCESS_LOGGERS = ("uvicorn.access",)


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Replaces secret query parameters in a log record's arguments and message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """Idempotent: filter the access loggers once."""
    for name in ACCESS_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
