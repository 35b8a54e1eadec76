"""`/api/v1/packages/`, `/devices/` and `/configs/`: create, list, get, edit, delete.

The three resources follow one pattern, so their routes come from one description each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import quick_read, runtime_of
from jobyard.api.native import inputs, present, schemas
from jobyard.api.native.answers import ConfigOut, DeviceOut, PackageOut, one, page
from jobyard.api.openapi import AUTHENTICATED, NO_CONTENT, WRITING
from jobyard.domain.filters import FieldKind
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import (
    CONFIG_FIELDS,
    DEVICE_FIELDS,
    NOT_FOUND_MESSAGES,
    PACKAGE_FIELDS,
)
from jobyard.services import catalog
from jobyard.services.runtime import Runtime

router = APIRouter(prefix="/api/v1", route_class=ReadsJsonBody, responses=AUTHENTICATED)


@dataclass(frozen=True)
class Resource:
    """How one catalog resource maps onto its service functions and representation."""

    name: str
    schema: type[BaseModel]
    answer: Any  # a TypedDict of answers.py
    kinds: Mapping[str, FieldKind]
    values: Callable[[Any], dict[str, Any]]
    present: Callable[[Any], dict[str, Any]]
    list_: Callable[[Runtime, Principal, Listing], tuple[list[Any], int]]
    get: Callable[[Runtime, Principal, int], Any]
    create: Callable[[Runtime, Principal, dict[str, Any]], Any]
    edit: Callable[[Runtime, Principal, int, dict[str, Any]], Any]
    delete: Callable[[Runtime, Principal, int], None]


def _plain_values(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


RESOURCES = [
    Resource(
        name="packages",
        answer=PackageOut,
        schema=schemas.PackageIn,
        kinds=PACKAGE_FIELDS,
        values=inputs.package_values,
        present=present.package,
        list_=lambda rt, who, req: catalog.list_packages(rt, actor=who, request=req),
        get=lambda rt, who, i: catalog.get_package(rt, actor=who, package_id=i),
        create=lambda rt, who, v: catalog.create_package(rt, actor=who, values=v),
        edit=lambda rt, who, i, v: catalog.edit_package(rt, actor=who, package_id=i, values=v),
        delete=lambda rt, who, i: catalog.delete_package(rt, actor=who, package_id=i),
    ),
    Resource(
        name="devices",
        answer=DeviceOut,
        schema=schemas.DeviceIn,
        kinds=DEVICE_FIELDS,
        values=_plain_values,
        present=present.device,
        list_=lambda rt, who, req: catalog.list_devices(rt, actor=who, request=req),
        get=lambda rt, who, i: catalog.get_device(rt, actor=who, device_id=i),
        create=lambda rt, who, v: catalog.create_device(rt, actor=who, values=v),
        edit=lambda rt, who, i, v: catalog.edit_device(rt, actor=who, device_id=i, values=v),
        delete=lambda rt, who, i: catalog.delete_device(rt, actor=who, device_id=i),
    ),
    Resource(
        name="configs",
        answer=ConfigOut,
        schema=schemas.ConfigIn,
        kinds=CONFIG_FIELDS,
        values=_plain_values,
        present=present.config,
        list_=lambda rt, who, req: catalog.list_configs(rt, actor=who, request=req),
        get=lambda rt, who, i: catalog.get_config(rt, actor=who, config_id=i),
        create=lambda rt, who, v: catalog.create_config(rt, actor=who, values=v),
        edit=lambda rt, who, i, v: catalog.edit_config(rt, actor=who, config_id=i, values=v),
        delete=lambda rt, who, i: catalog.delete_config(rt, actor=who, config_id=i),
    ),
]


def add_routes(resource: Resource) -> None:
    """List, create, get, edit and delete routes for one resource."""
    collection, item = f"/{resource.name}/", f"/{resource.name}/{{object_id}}/"
    singular = resource.name.rstrip("s")
    not_found = NOT_FOUND_MESSAGES[resource.name]
    read_listing = Depends(params.listing_of(resource.kinds))

    async def list_all(
        request: Request,
        who: Principal = Depends(authenticate),
        wanted: Listing = read_listing,
    ) -> Response:
        found, total = await run_in_threadpool(resource.list_, runtime_of(request), who, wanted)
        return render.page([resource.present(o) for o in found], total=total, request=wanted.page)

    async def create(
        body: BaseModel, request: Request, who: Principal = Depends(authenticate)
    ) -> Response:
        values = resource.values(body)
        inputs.require_name(values)
        created = await run_in_threadpool(resource.create, runtime_of(request), who, values)
        return render.one(resource.present(created))

    async def get(
        object_id: str, request: Request, who: Principal = Depends(authenticate)
    ) -> Response:
        target = params.object_id(object_id, not_found)
        rt = runtime_of(request)
        return render.one(
            resource.present(await quick_read(rt, lambda: resource.get(rt, who, target)))
        )

    async def edit(
        object_id: str, body: BaseModel, request: Request, who: Principal = Depends(authenticate)
    ) -> Response:
        target = params.object_id(object_id, not_found)
        values = resource.values(body)
        edited = await run_in_threadpool(resource.edit, runtime_of(request), who, target, values)
        return render.one(resource.present(edited))

    async def delete(
        object_id: str, request: Request, who: Principal = Depends(authenticate)
    ) -> Response:
        target = params.object_id(object_id, not_found)
        await run_in_threadpool(resource.delete, runtime_of(request), who, target)
        return render.no_content()

    # The closures are shared by the three resources; their body and path parameters are
    # each resource's own, so FastAPI validates and documents them per resource.
    id_param = Annotated[str, params.id_in_path(singular)]
    for with_id in (get, edit, delete):
        with_id.__annotations__["object_id"] = id_param
    for with_body in (create, edit):
        with_body.__annotations__["body"] = resource.schema
    answer = one(resource.answer)
    tags: list[str | Enum] = [resource.name]
    router.add_api_route(
        collection,
        list_all,
        methods=["GET"],
        name=f"list_{resource.name}",
        response_model=page(resource.answer),
        tags=tags,
    )
    router.add_api_route(
        collection,
        create,
        methods=["POST"],
        name=f"create_{singular}",
        response_model=answer,
        responses=WRITING,
        tags=tags,
    )
    router.add_api_route(
        item, get, methods=["GET"], name=f"get_{singular}", response_model=answer, tags=tags
    )
    router.add_api_route(
        item,
        edit,
        methods=["PATCH"],
        name=f"edit_{singular}",
        response_model=answer,
        responses=WRITING,
        tags=tags,
    )
    router.add_api_route(
        item,
        delete,
        methods=["DELETE"],
        name=f"delete_{singular}",
        status_code=204,
        responses=WRITING | NO_CONTENT,
        tags=tags,
    )


for _resource in RESOURCES:
    add_routes(_resource)
