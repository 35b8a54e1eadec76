"""Secrets in query strings never reach the access log."""

from __future__ import annotations

import logging

import pytest

from jobyard.logs import RedactSecrets, redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "POST /authenticate?username=op&password=s3cret HTTP/1.1",
            "POST /authenticate?username=op&password=*** HTTP/1.1",
        ),
        ("/api/v1/jobs/?token=jy_abc&limit=2", "/api/v1/jobs/?token=***&limit=2"),
        ("/node/api/jobs/1?api-token=xyz", "/node/api/jobs/1?api-token=***"),
        ("/api/v1/jobs/?filter=name=token", "/api/v1/jobs/?filter=name=token"),
    ],
)
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_filter_rewrites_uvicorn_style_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/x/?token=abc", "1.1", 200),
        None,
    )
    RedactSecrets().filter(record)
    assert "abc" not in record.getMessage()
