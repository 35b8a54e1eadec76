"""BMC's job run filters, read from the query (`filters[x]=v` or plain `x=v`) and from a GET
body (JSON `{"filters": {…}}` or XML `<filters>…</filters>`), as native run filters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from starlette.requests import Request

from jobyard.api import bodies, xml
from jobyard.api.dialects.bmc.present import JOB_TYPES, STATUS_NAMES
from jobyard.domain.filters import Filter, Op, check_filter
from jobyard.domain.statuses import RunStatus
from jobyard.domain.vocabulary import RUN_FIELDS
from jobyard.errors import ValidationFailed


def _checked(name: str, f: Filter, expected: str) -> Filter:
    try:
        return check_filter(f, RUN_FIELDS)
    except ValidationFailed:
        raise ValidationFailed(
            f'invalid {name} "{str(f.value)[:100]}": expected {expected}', field=name
        ) from None


def _equal(field: str, expected: str) -> Callable[[str, str], Filter]:
    return lambda name, text: _checked(name, Filter(field, Op.EQ, text), expected)


def _run_statuses_regex(statuses: list[RunStatus]) -> str:
    return "^(" + "|".join(re.escape(s.value) for s in statuses) + ")$"


def _status(name: str, text: str) -> Filter:
    wanted = [s for s, shown in STATUS_NAMES.items() if shown.lower() == text.strip().lower()]
    if not wanted:
        choices = ", ".join(dict.fromkeys(STATUS_NAMES.values()))
        raise ValidationFailed(f'invalid {name} "{text[:100]}": expected {choices}', field=name)
    if len(wanted) == 1:
        return _checked(name, Filter("status", Op.EQ, wanted[0].value), "a status")
    return _checked(name, Filter("status", Op.MATCH, _run_statuses_regex(wanted)), "a status")


def _job_type(name: str, text: str) -> Filter:
    kinds = [k for k, shown in JOB_TYPES.items() if shown == text.strip().lower()]
    if not kinds:
        choices = " or ".join(JOB_TYPES.values())
        raise ValidationFailed(f'invalid {name} "{text[:100]}": expected {choices}', field=name)
    return _checked(name, Filter("kind", Op.EQ, kinds[0].value), "a job type")


INTEGER = "an integer"
FILTERS: dict[str, Callable[[str, str], Filter]] = {
    "currently_running": _equal("running", "true or false"),
    "run_key": _equal("run_key", INTEGER),
    "status": _status,
    "job_type": _job_type,
    "process_id": _equal("process_id", INTEGER),
    "automation_id": _equal("package_id", INTEGER),
    "user_id": _equal("user_id", INTEGER),
    "step_id": _equal("step_id", INTEGER),
}
_BRACKETED = re.compile(r"filters\[([^\[\]]*)\]")
XML_BODY_TYPES = {"application/xml", "text/xml"}


def _value_text(name: str, value: object) -> str | None:
    """A filter value as text; None (no filter) when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip() or None
    raise ValidationFailed(f"invalid {name}: expected a single value", field=name)


def _filter(name: str, value: object, *, strict: bool) -> Filter | None:
    make = FILTERS.get(name)
    if make is None:
        if strict:
            known = ", ".join(FILTERS)
            raise ValidationFailed(f'unknown filter "{name[:50]}": expected one of {known}')
        return None
    text = _value_text(name, value)
    return None if text is None else make(name, text)


def query_filters(request: Request) -> list[Filter]:
    found: list[Filter | None] = []
    for key, value in request.query_params.multi_items():
        bracketed = _BRACKETED.fullmatch(key)
        if bracketed:
            found.append(_filter(bracketed[1], value, strict=True))
        elif key.startswith("filters"):
            raise ValidationFailed(f'invalid parameter "{key[:60]}": expected filters[name]')
        else:
            found.append(_filter(key, value, strict=False))
    return [f for f in found if f is not None]


def _filters_in(mapping: object, *, strict: bool) -> list[Filter]:
    if not isinstance(mapping, Mapping):
        raise ValidationFailed("invalid body: filters must be an object of name: value")
    found = [_filter(str(name), value, strict=strict) for name, value in mapping.items()]
    return [f for f in found if f is not None]


def _xml_body_filters(raw: bytes) -> list[Filter]:
    try:
        document = xml.from_xml(raw)
    except xml.XmlError as exc:
        raise ValidationFailed(f"invalid XML body: {exc}") from None
    value = document.get("filters")
    if value is None and "filters" not in document:
        raise ValidationFailed("invalid XML body: expected <filters>…</filters>")
    return _filters_in(value or {}, strict=True)


def _json_body_filters(raw: bytes) -> list[Filter]:
    """`{"filters": {…}}`; other members are parameters, as Rails merges a JSON body into
    `params`: a filter name is a plain filter, anything else is ignored."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationFailed('invalid JSON body: expected {"filters": {…}}') from None
    if not isinstance(data, dict):
        raise ValidationFailed('invalid JSON body: expected {"filters": {…}}')
    plain = {name: value for name, value in data.items() if name != "filters"}
    return _filters_in(data.get("filters") or {}, strict=True) + _filters_in(plain, strict=False)


async def body_filters(request: Request) -> list[Filter]:
    """Filters sent in a GET body: XML by its content type (or a leading `<`), else JSON."""
    raw = await bodies.read_bytes(request)
    if not raw.strip():
        return []
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media in XML_BODY_TYPES or (media != "application/json" and raw.lstrip().startswith(b"<")):
        return _xml_body_filters(raw)
    return _json_body_filters(raw)
