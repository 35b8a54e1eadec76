"""What jobyard's processes log, and how: one line per event, as text or as JSON
(`JOBYARD_LOG_FORMAT`), each line carrying its fields (a job's id, status, exit code…), and
never a secret: query parameters that carry passwords or tokens, and bearer tokens, are
masked on every line, whoever wrote it (uvicorn included)."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

SECRET_PARAMETER = re.compile(r"((?:^|[?&])(?:password|token|api-token)=)[^&\s\"]*", re.I)
BEARER = re.compile(r"(\bBearer\s+)[^\s\"']+", re.I)
ACCESS_LOGGERS = ("uvicorn.access",)
# The servers' own loggers: they write through jobyard's handler, not their own.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOT_FIELDS = frozenset(RESERVED_ATTRS) | {"taskName", "color_message"}


def redact(text: str) -> str:
    return BEARER.sub(r"\1***", SECRET_PARAMETER.sub(r"\1***", text))


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message, its arguments and its fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        for name in fields_of(record):
            setattr(record, name, _redacted(getattr(record, name)))
        return True


def fields_of(record: logging.LogRecord) -> list[str]:
    """The names a record was given with `extra=`."""
    return [name for name in record.__dict__ if name not in NOT_FIELDS]


class TextWithFields(logging.Formatter):
    """The message, then its fields as `name=value` for grep and eyes alike."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in fields_of(record))
        return f"{line} {fields}" if fields else line


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            reserved_attrs=sorted(NOT_FIELDS),
        )
    return TextWithFields(TEXT_FORMAT)


_configured = {"format": "text"}


def configured_format() -> str:
    """The format `configure` chose (text until it runs): the spawner processes follow it."""
    return _configured["format"]


def configure(log_format: str, level: str) -> None:
    """One handler on the root logger, for jobyard's and uvicorn's lines alike."""
    _configured["format"] = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in SERVER_LOGGERS:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def install_redaction() -> None:
    """Idempotent: filter the access loggers once (for an app served without `configure`)."""
    for name in ACCESS_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
