"""Packages, devices and configs: lists and views for everyone who may read them, and for
admins a JSON editor whose text is the API's own request body, checked by the same model
(`api.native.catalog.RESOURCES`). And the workers, for admins."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from jobyard.api import params
from jobyard.api.bodies import describe
from jobyard.api.calls import runtime_of
from jobyard.api.native import inputs
from jobyard.api.native.catalog import RESOURCES, Resource
from jobyard.api.web.rendering import redirect, show, signed_in
from jobyard.api.web.session import CSRF_FIELD, Session, check_csrf
from jobyard.domain.vocabulary import NOT_FOUND_MESSAGES
from jobyard.errors import JobyardError, NotFound, ValidationFailed
from jobyard.services import workers

BY_NAME = {resource.name: resource for resource in RESOURCES}
TITLES = {"packages": "Packages", "devices": "Devices", "configs": "Configs"}
NEW_EXAMPLES: dict[str, dict[str, Any]] = {
    "packages": {"name": "hello", "command": ["echo", "hello world"], "timeout": 60},
    "devices": {"name": "dut-1", "attributes": {"site": "lab"}},
    "configs": {"name": "default", "testvars": {"wan_mode": "dhcp"}},
}
PAGE = QueryParams("sort=name&limit=100")


def _resource(request: Request) -> Resource:
    """The resource a page is of: the first part of its path (see `web._catalog`)."""
    return BY_NAME[request.url.path.split("/")[1]]


def _object_id(request: Request, resource: Resource) -> int:
    text = str(request.path_params["object_id"])
    return params.object_id(text, NOT_FOUND_MESSAGES[resource.name])


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@signed_in
async def list_page(request: Request, session: Session) -> Response:
    resource = _resource(request)
    query = QueryParams([*PAGE.multi_items(), ("page", request.query_params.get("page", "1"))])
    wanted = params.listing(query, resource.kinds)
    rt = runtime_of(request)
    found, total = await run_in_threadpool(resource.list_, rt, session.principal, wanted)
    rows = [resource.present(o) for o in found]
    pages = max(1, -(-total // (wanted.page.limit or 1)))
    return await show(
        request,
        session,
        "catalog_list.html",
        title=TITLES[resource.name],
        active=f"/{resource.name}",
        kind=resource.name,
        rows=rows,
        total=total,
        page=wanted.page.page,
        pages=pages,
    )


@signed_in
async def item_page(request: Request, session: Session) -> Response:
    resource = _resource(request)
    target = _object_id(request, resource)
    rt = runtime_of(request)
    found = await run_in_threadpool(resource.get, rt, session.principal, target)
    shown = resource.present(found)
    return await show(
        request,
        session,
        "catalog_item.html",
        title=f"{TITLES[resource.name]}: {shown.get('name', target)}",
        active=f"/{resource.name}",
        kind=resource.name,
        item=shown,
        text=_pretty(shown),
    )


async def _editor(
    request: Request,
    session: Session,
    resource: Resource,
    text: str,
    *,
    object_id: int | None,
    problem: str = "",
    status: int = 200,
) -> Response:
    verb = "Edit" if object_id else "New"
    return await show(
        request,
        session,
        "catalog_edit.html",
        status=status,
        title=f"{verb} {resource.name.rstrip('s')}",
        active=f"/{resource.name}",
        kind=resource.name,
        object_id=object_id,
        text=text,
        problem=problem,
    )


@signed_in
async def editor_page(request: Request, session: Session) -> Response:
    resource = _resource(request)
    if "object_id" not in request.path_params:
        text = _pretty(NEW_EXAMPLES[resource.name])
        return await _editor(request, session, resource, text, object_id=None)
    target = _object_id(request, resource)
    rt = runtime_of(request)
    found = resource.present(await run_in_threadpool(resource.get, rt, session.principal, target))
    editable = {k: v for k, v in found.items() if k in resource.schema.model_fields}
    return await _editor(request, session, resource, _pretty(editable), object_id=target)


def _body(resource: Resource, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("expected a JSON object")
    try:
        return resource.values(resource.schema.model_validate(data))
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None


@signed_in
async def save(request: Request, session: Session) -> Response:
    """Create (no id) or edit, as the API's POST and PATCH would with this body."""
    resource = _resource(request)
    form = await request.form()
    await check_csrf(request, session, str(form.get(CSRF_FIELD, "")))
    text = str(form.get("body", ""))
    target = _object_id(request, resource) if "object_id" in request.path_params else None
    rt, who = runtime_of(request), session.principal
    try:
        values = _body(resource, text)
        if target is None:
            inputs.require_name(values)
            saved = await run_in_threadpool(resource.create, rt, who, values)
        else:
            saved = await run_in_threadpool(resource.edit, rt, who, target, values)
    except (ValidationFailed, JobyardError) as exc:
        if isinstance(exc, NotFound) and target is not None:
            raise
        return await _editor(
            request, session, resource, text, object_id=target, problem=exc.message, status=400
        )
    shown = resource.present(saved)
    return redirect(f"/{resource.name}/{shown['id']}", f"saved {shown.get('name', '')}")


@signed_in
async def delete(request: Request, session: Session) -> Response:
    resource = _resource(request)
    form = await request.form()
    await check_csrf(request, session, str(form.get(CSRF_FIELD, "")))
    target = _object_id(request, resource)
    await run_in_threadpool(resource.delete, runtime_of(request), session.principal, target)
    return redirect(f"/{resource.name}", f"deleted {resource.name.rstrip('s')} {target}")


@signed_in
async def workers_page(request: Request, session: Session) -> Response:
    rt = runtime_of(request)
    found = await run_in_threadpool(
        lambda: workers.list_workers(rt, actor=session.principal, include_stopped=False)
    )
    return await show(
        request, session, "workers.html", title="Workers", active="/workers", workers=found
    )
