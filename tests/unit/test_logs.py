"""Secrets in query strings never reach the access log."""

from __future__ import annotations

import json
import logging

import pytest

from jobyard.logs import RedactSecrets, formatter, redact


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


def _record(msg: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("jobyard.jobs", logging.INFO, __file__, 1, msg, (), None)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_bearer_tokens_and_fields_are_masked_too() -> None:
    record = _record("sent Authorization: Bearer jy_secret", path="/x/?token=abc")
    RedactSecrets().filter(record)
    assert record.getMessage() == "sent Authorization: Bearer ***"
    assert record.__dict__["path"] == "/x/?token=***"


def test_text_lines_carry_their_fields_and_json_lines_are_objects() -> None:
    record = _record("job 7 ended completed", job_id=7, status="completed", exit_code=0)
    text = formatter("text").format(record)
    assert text.endswith(
        "INFO jobyard.jobs: job 7 ended completed job_id=7 status=completed exit_code=0"
    )
    line = json.loads(formatter("json").format(record))
    assert line["message"] == "job 7 ended completed"
    assert (line["level"], line["logger"], line["job_id"], line["exit_code"]) == (
        "INFO",
        "jobyard.jobs",
        7,
        0,
    )
    assert "args" not in line
    assert "msg" not in line
