"""`/api/v1/webhooks/`: a customer's subscriptions to its jobs' events, their delivery log,
redelivery and a test ping (docs/webhooks.md). Customer admins manage their customer's;
system admins any customer's (`Customer-Id`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import runtime_of
from jobyard.api.native import present, schemas
from jobyard.api.native.answers import WebhookDeliveryOut, WebhookOut, one, page
from jobyard.api.openapi import AUTHENTICATED, NO_CONTENT, WRITING
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NOT_FOUND_MESSAGES, WEBHOOK_FIELDS
from jobyard.services import webhooks

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    route_class=ReadsJsonBody,
    responses=AUTHENTICATED,
)
WebhookId = Annotated[str, params.id_in_path("webhook")]
DeliveryId = Annotated[str, params.id_in_path("delivery")]
Caller = Annotated[Principal, Depends(authenticate)]
WebhookListing = Annotated[Listing, Depends(params.listing_of(WEBHOOK_FIELDS))]
DeliveryPage = Annotated[Listing, Depends(params.listing_of({}))]  # page and limit only
NO_SUCH_WEBHOOK = NOT_FOUND_MESSAGES["webhooks"]
NO_SUCH_DELIVERY = NOT_FOUND_MESSAGES["webhook_deliveries"]


def _values(body: schemas.WebhookIn) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if "package_id" in values:
        values["package_id"] = params.reference_id(values["package_id"], "package_id")
    return values


@router.get("/", response_model=page(WebhookOut))
async def list_webhooks(listing: WebhookListing, who: Caller, request: Request) -> Response:
    found, total = await run_in_threadpool(
        lambda: webhooks.list_webhooks(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.webhook(w) for w in found], total=total, request=listing.page)


@router.post("/", response_model=one(WebhookOut), responses=WRITING)
async def create_webhook(body: schemas.WebhookIn, who: Caller, request: Request) -> Response:
    """A new webhook: `url`, and optionally `events`, `package_id`, `secret`. The answer
    holds its `secret`, which no later read shows."""
    values = _values(body)
    created = await run_in_threadpool(
        lambda: webhooks.create_webhook(runtime_of(request), actor=who, values=values)
    )
    return render.one(present.webhook(created.webhook) | {"secret": created.secret})


@router.get("/{webhook_id}/", response_model=one(WebhookOut))
async def get_webhook(webhook_id: WebhookId, who: Caller, request: Request) -> Response:
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    found = await run_in_threadpool(
        lambda: webhooks.get_webhook(runtime_of(request), actor=who, webhook_id=target)
    )
    return render.one(present.webhook(found))


@router.patch("/{webhook_id}/", response_model=one(WebhookOut), responses=WRITING)
async def edit_webhook(
    webhook_id: WebhookId, body: schemas.WebhookIn, who: Caller, request: Request
) -> Response:
    """Change a webhook; `"enabled": true` re-enables a disabled one."""
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    values = _values(body)
    edited = await run_in_threadpool(
        lambda: webhooks.edit_webhook(
            runtime_of(request), actor=who, webhook_id=target, values=values
        )
    )
    return render.one(present.webhook(edited))


@router.delete("/{webhook_id}/", status_code=204, responses=WRITING | NO_CONTENT)
async def delete_webhook(webhook_id: WebhookId, who: Caller, request: Request) -> Response:
    """Delete a webhook and its delivery log."""
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    await run_in_threadpool(
        lambda: webhooks.delete_webhook(runtime_of(request), actor=who, webhook_id=target)
    )
    return render.no_content()


@router.get("/{webhook_id}/deliveries/", response_model=page(WebhookDeliveryOut))
async def list_webhook_deliveries(
    webhook_id: WebhookId, listing: DeliveryPage, who: Caller, request: Request
) -> Response:
    """The delivery log, newest first: each event sent, its tries and their answers."""
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    found, total = await run_in_threadpool(
        lambda: webhooks.list_deliveries(
            runtime_of(request), actor=who, webhook_id=target, page=listing.page
        )
    )
    return render.page(
        [present.webhook_delivery(d) for d in found], total=total, request=listing.page
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver/",
    response_model=one(WebhookDeliveryOut),
    responses=WRITING,
)
async def redeliver_webhook_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, who: Caller, request: Request
) -> Response:
    """Send a delivery again, now, with a full set of tries (the same id and payload)."""
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    delivery = params.object_id(delivery_id, NO_SUCH_DELIVERY)
    found = await run_in_threadpool(
        lambda: webhooks.redeliver(
            runtime_of(request), actor=who, webhook_id=target, delivery_id=delivery
        )
    )
    return render.one(present.webhook_delivery(found))


@router.post("/{webhook_id}/test/", response_model=one(WebhookDeliveryOut), responses=WRITING)
async def test_webhook(webhook_id: WebhookId, who: Caller, request: Request) -> Response:
    """Send a `ping` event now, to try the receiver; its delivery is in the log."""
    target = params.object_id(webhook_id, NO_SUCH_WEBHOOK)
    found = await run_in_threadpool(
        lambda: webhooks.ping(runtime_of(request), actor=who, webhook_id=target)
    )
    return render.one(present.webhook_delivery(found))
