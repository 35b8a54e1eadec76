"""The launch form: what it sends is the API's launch body, validated by the same model and
launched through the same queue, and each refusal is shown next to the field it is about."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from jobyard.api import params
from jobyard.api.calls import runtime_of
from jobyard.api.group_commit import launch_queue_of
from jobyard.api.native import inputs, schemas
from jobyard.api.web.rendering import redirect, show, signed_in
from jobyard.api.web.session import CSRF_FIELD, Session, check_csrf
from jobyard.domain.permissions import Scope, require
from jobyard.domain.vocabulary import (
    CONFIG_FIELDS,
    DEVICE_FIELDS,
    NOT_FOUND_MESSAGES,
    PACKAGE_FIELDS,
)
from jobyard.errors import JobyardError, NotFound, RuleViolation, ValidationFailed
from jobyard.services import catalog
from jobyard.services.runtime import Runtime

FIELDS = ("package", "device", "config", "tags", "testvars", "run_at", "priority")
# Where the API's names for a launch's parts appear on the form.
FORM_FIELD_OF = {
    "package_id": "package",
    "device_id": "device",
    "config_id": "config",
    "options": "testvars",
    "tags": "tags",
    "testvars": "testvars",
    "run_at": "run_at",
    "priority": "priority",
}
NOT_FOUND_FIELDS = {
    NOT_FOUND_MESSAGES["packages"]: "package",
    NOT_FOUND_MESSAGES["devices"]: "device",
    NOT_FOUND_MESSAGES["configs"]: "config",
}
CHOICES = QueryParams("sort=name&limit=1000")


def _choices(rt: Runtime, session: Session) -> dict[str, Any]:
    who = session.principal
    return {
        "packages": catalog.list_packages(
            rt, actor=who, request=params.listing(CHOICES, PACKAGE_FIELDS)
        )[0],
        "devices": catalog.list_devices(
            rt, actor=who, request=params.listing(CHOICES, DEVICE_FIELDS)
        )[0],
        "configs": catalog.list_configs(
            rt, actor=who, request=params.listing(CHOICES, CONFIG_FIELDS)
        )[0],
    }


async def _form_page(
    request: Request,
    session: Session,
    given: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> Response:
    rt = runtime_of(request)
    choices = await run_in_threadpool(lambda: _choices(rt, session))
    context = choices | {"given": given, "problems": problems}
    return await show(
        request, session, "launch.html", status=status, title="Launch", active="/launch", **context
    )


@signed_in
async def launch_page(request: Request, session: Session) -> Response:
    require(session.principal, Scope.JOBS_WRITE)
    given = {name: request.query_params.get(name, "") for name in FIELDS}
    return await _form_page(request, session, given, {})


def launch_body(given: dict[str, str]) -> dict[str, Any]:
    """The API's launch body for what the form was given (empty fields left out)."""
    body: dict[str, Any] = {"package_id": given["package"]}
    if given["device"]:
        body["device_id"] = given["device"]
    if given["config"]:
        body["config_id"] = given["config"]
    options: dict[str, Any] = {}
    tags = [t.strip() for t in given["tags"].split(",") if t.strip()]
    if tags:
        options["tags"] = tags
    testvars = [line.strip() for line in given["testvars"].splitlines() if line.strip()]
    if testvars:
        options["testvars"] = [_testvar(line) for line in testvars]
    if options:
        body["options"] = options
    if given["run_at"]:
        body["run_at"] = given["run_at"]
    if given["priority"]:
        body["priority"] = given["priority"]
    return body


def _testvar(line: str) -> dict[str, str]:
    name, sep, value = line.partition("=")
    if not sep:
        raise ValidationFailed(f"testvar {line[:40]!r}: write it as name=value", field="testvars")
    return {"name": name.strip(), "value": value.strip()}


def _problems(exc: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors():
        parts = [str(p) for p in error["loc"]]
        field = next((FORM_FIELD_OF[p] for p in reversed(parts) if p in FORM_FIELD_OF), "")
        found.setdefault(field, f"{'.'.join(parts)}: {error['msg']}")
    return found


def _problem_of(exc: JobyardError) -> dict[str, str]:
    if isinstance(exc, ValidationFailed | RuleViolation) and exc.field:
        return {FORM_FIELD_OF.get(exc.field, exc.field): exc.message}
    if isinstance(exc, NotFound):
        return {NOT_FOUND_FIELDS.get(exc.message, ""): exc.message}
    return {"": exc.message}


@signed_in
async def launch(request: Request, session: Session) -> Response:
    form: FormData = await request.form()
    await check_csrf(request, session, str(form.get(CSRF_FIELD, "")))
    given = {name: str(form.get(name, "")).strip() for name in FIELDS}
    try:
        body = schemas.JobLaunchIn.model_validate(launch_body(given))
        job = await launch_queue_of(request).launch(session.principal, inputs.launch_request(body))
    except ValidationError as exc:
        return await _form_page(request, session, given, _problems(exc), status=400)
    except (ValidationFailed, RuleViolation, NotFound) as exc:
        return await _form_page(request, session, given, _problem_of(exc), status=400)
    return redirect(f"/jobs/{job.id}", f"launched job {job.id}")
