"""`/api/v1/packages/`, `/devices/` and `/configs/`: create, list, get, edit, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import bodies, params, render
from jobyard.api.auth import identify
from jobyard.api.native import inputs, present, schemas
from jobyard.services import catalog
from jobyard.services.accounts import Identity
from jobyard.services.runtime import Runtime
from jobyard.store.catalog import CONFIG_FIELDS, DEVICE_FIELDS, NOT_FOUND_MESSAGES, PACKAGE_FIELDS

router = APIRouter(prefix="/api/v1")
KINDS = {
    "packages": {n: f.kind for n, f in PACKAGE_FIELDS.items()},
    "devices": {n: f.kind for n, f in DEVICE_FIELDS.items()},
    "configs": {n: f.kind for n, f in CONFIG_FIELDS.items()},
}


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.rt
    return runtime


def _id(text: str, resource: str) -> int:
    return params.object_id(text, NOT_FOUND_MESSAGES[resource])


# Packages ---------------------------------------------------------------------------------


@router.get("/packages/")
async def list_packages(request: Request, who: Identity = Depends(identify)) -> Response:
    listing = params.listing(request.query_params, KINDS["packages"])
    found, total = await run_in_threadpool(
        lambda: catalog.list_packages(_rt(request), request=listing)
    )
    return render.page([present.package(p) for p in found], total=total, request=listing.page)


@router.post("/packages/")
async def create_package(request: Request, who: Identity = Depends(identify)) -> Response:
    values = inputs.package_values(await bodies.parse(request, schemas.PackageIn))
    inputs.require_name(values)
    created = await run_in_threadpool(
        lambda: catalog.create_package(_rt(request), values=values, user_id=who.user_id)
    )
    return render.one(present.package(created))


@router.get("/packages/{package_id}/")
async def get_package(
    package_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(package_id, "packages")
    found = await run_in_threadpool(lambda: catalog.get_package(_rt(request), package_id=target))
    return render.one(present.package(found))


@router.patch("/packages/{package_id}/")
async def edit_package(
    package_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(package_id, "packages")
    values = inputs.package_values(await bodies.parse(request, schemas.PackageIn))
    found = await run_in_threadpool(
        lambda: catalog.edit_package(_rt(request), package_id=target, values=values)
    )
    return render.one(present.package(found))


@router.delete("/packages/{package_id}/")
async def delete_package(
    package_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(package_id, "packages")
    await run_in_threadpool(lambda: catalog.delete_package(_rt(request), package_id=target))
    return render.no_content()


# Devices ----------------------------------------------------------------------------------


@router.get("/devices/")
async def list_devices(request: Request, who: Identity = Depends(identify)) -> Response:
    listing = params.listing(request.query_params, KINDS["devices"])
    found, total = await run_in_threadpool(
        lambda: catalog.list_devices(_rt(request), request=listing)
    )
    return render.page([present.device(d) for d in found], total=total, request=listing.page)


@router.post("/devices/")
async def create_device(request: Request, who: Identity = Depends(identify)) -> Response:
    values = (await bodies.parse(request, schemas.DeviceIn)).model_dump(exclude_unset=True)
    inputs.require_name(values)
    created = await run_in_threadpool(
        lambda: catalog.create_device(_rt(request), values=values, user_id=who.user_id)
    )
    return render.one(present.device(created))


@router.get("/devices/{device_id}/")
async def get_device(
    device_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(device_id, "devices")
    found = await run_in_threadpool(lambda: catalog.get_device(_rt(request), device_id=target))
    return render.one(present.device(found))


@router.patch("/devices/{device_id}/")
async def edit_device(
    device_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(device_id, "devices")
    values = (await bodies.parse(request, schemas.DeviceIn)).model_dump(exclude_unset=True)
    found = await run_in_threadpool(
        lambda: catalog.edit_device(_rt(request), device_id=target, values=values)
    )
    return render.one(present.device(found))


@router.delete("/devices/{device_id}/")
async def delete_device(
    device_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(device_id, "devices")
    await run_in_threadpool(lambda: catalog.delete_device(_rt(request), device_id=target))
    return render.no_content()


# Configs ----------------------------------------------------------------------------------


@router.get("/configs/")
async def list_configs(request: Request, who: Identity = Depends(identify)) -> Response:
    listing = params.listing(request.query_params, KINDS["configs"])
    found, total = await run_in_threadpool(
        lambda: catalog.list_configs(_rt(request), request=listing)
    )
    return render.page([present.config(c) for c in found], total=total, request=listing.page)


@router.post("/configs/")
async def create_config(request: Request, who: Identity = Depends(identify)) -> Response:
    values = (await bodies.parse(request, schemas.ConfigIn)).model_dump(exclude_unset=True)
    inputs.require_name(values)
    created = await run_in_threadpool(
        lambda: catalog.create_config(_rt(request), values=values, user_id=who.user_id)
    )
    return render.one(present.config(created))


@router.get("/configs/{config_id}/")
async def get_config(
    config_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(config_id, "configs")
    found = await run_in_threadpool(lambda: catalog.get_config(_rt(request), config_id=target))
    return render.one(present.config(found))


@router.patch("/configs/{config_id}/")
async def edit_config(
    config_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(config_id, "configs")
    values = (await bodies.parse(request, schemas.ConfigIn)).model_dump(exclude_unset=True)
    found = await run_in_threadpool(
        lambda: catalog.edit_config(_rt(request), config_id=target, values=values)
    )
    return render.one(present.config(found))


@router.delete("/configs/{config_id}/")
async def delete_config(
    config_id: str, request: Request, who: Identity = Depends(identify)
) -> Response:
    target = _id(config_id, "configs")
    await run_in_threadpool(lambda: catalog.delete_config(_rt(request), config_id=target))
    return render.no_content()
