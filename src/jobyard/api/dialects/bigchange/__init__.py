"""BigChange's REST API v1 jobs (`/v1/jobs`): a thin presenter over the job services.

Modules: `routes` (the endpoints), `bodies` (request bodies), `queries` (query parameters
and the job list's filters), `present` (statuses, the job and history models, errors).

The seed page (`PUT /v1/jobs/{jobId}/result`) comes first, then BigChange's public docs
(`vendors/vendor_apis.md` §3); where both are silent, the choice is written down here.

What maps to what
- A BigChange job is a job; its job type (`typeId`, `typeName`) is the job's package, whose
  `positive_results` / `negative_results` are BigChange's result options.
- `status` follows DESIGN §3: pending → `new` (`scheduled` while `run_at` is in the future),
  running → `started`, completed → `completedOk`, completed_with_issues, failed, timed_out and
  lost → `completedWithIssues`, cancelled → `cancelled`. BigChange's other statuses (`sent`,
  `onTheWay`, ...) have no counterpart here: a list filtered on them is empty.
- `plannedStartAt` is `run_at`, `actualStartAt`/`actualEndAt` the job's start and finish,
  `statusModifiedAt` the time of its current status (finish, start or creation), `result` the
  outcome's result. Times are ISO 8601 in UTC (`Z`).
- `description`, `reference` and `contactId` given to `POST /v1/jobs` are kept in the job's
  free-form `context` (no table of their own) and shown back; without them a job shows
  `description: ""`, `reference: null`, `contactId: null`.

Decisions where BigChange is silent or cannot be followed exactly
- Credentials: `Authorization: Bearer <token>` only (a jobyard API token stands in for
  BigChange's OAuth JWT); Basic and `?token=` are not accepted on this surface. BigChange
  documents no 401, yet a missing, malformed or unknown token is answered **401** with
  `WWW-Authenticate: Bearer`: 403 keeps its documented meaning, a known caller that may not do
  this (a missing `jobs:read`/`jobs:write` scope, another customer), so a client can tell
  "get a new token" from "ask for more rights".
- `Customer-Id` is required on every request and checked before the credentials: absent,
  blank, or not a number of at most 19 digits → 400. A caller may name only its own customer
  (403 otherwise); a system admin may name any existing one (404 for one that does not exist).
- Path ids are int64 ≥ 1; anything else (letters, 0, too large) names no job → **404**, as a
  request to BigChange's `{jobId:long}` route that does not match it would get.
- Errors are RFC 7807 `application/problem+json` with `type`, `title`, `status`, `detail` and
  `instance`; only 422 adds `errors` (property → messages). 400 is malformed input (JSON,
  types, an enum value, an empty `result`, paging); 422 a well-formed request that breaks a
  rule (job status, result options, unknown job type). Our 409s (a conflict with the job's
  state) are BigChange's 422s.
- Request bodies: the Pydantic models of `bodies.py`; unknown members are ignored (ASP.NET's
  default), known ones are type-checked. No `Content-Type` is enforced.
- `statusModifiedAt` (start, result), `comment` (start) and `reason` (cancel) are checked but
  not stored: the services record their own clock and reason for a status change.
- Cancel: BigChange answers 422 when the job is already started, suspended or completed
  ("Cancel a job", vendor docs), while our cancel service also stops a running job; the
  dialect asks the service for a pending-only cancel, which refuses a started job (422 on
  `status`) in the same transaction that would cancel it.
- Lists: no mandatory filter (BigChange's live API answers an unfiltered `GET /v1/jobs` 422;
  here it lists everything, a page at a time); `pageNumber` 1…2147483, `pageSize` 1…1000
  (default 100); no total count. Filters: `status` (repeated or comma-separated), `typeId`
  (one value), `sortBy` (`id`, `createdAt`, `plannedStartAt`, `actualStartAt`, `actualEndAt`)
  and `direction` (`ascending`/`descending`). The listing has no OR between filters, so
  exactly one of `new`/`scheduled` together with other statuses, and several `typeId`s, are
  refused with 400 rather than answered wrongly.
"""

from jobyard.api.dialects.bigchange.present import render_error
from jobyard.api.dialects.bigchange.routes import PREFIX, router

__all__ = ["PREFIX", "render_error", "router"]
