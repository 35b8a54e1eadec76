"""BMC Release Process Management: REST job runs, read-only, under `/v1/job_runs`.

A job run is one of our runs (an attempt of a job) shown with its job. Routes:

- `GET /v1/job_runs`, `/v1/job_runs.json`, `/v1/job_runs.xml`: every matching run (404 when
  none matches, as BMC answers);
- `GET /v1/job_runs/{id}`, `/v1/job_runs/{id}.json`, `/v1/job_runs/{id}.xml`: one run;
- POST, PUT, PATCH, DELETE and OPTIONS on both: 405 with `Allow: GET, HEAD`, after the token
  is checked (an invalid token is 403 first, as BMC lists it).

Choices where the seed and BMC's docs are silent, each the least surprising one:

- Format: a `.json`/`.xml` suffix, else a `format` query parameter (Rails honours both), else the
  `Accept` header (`application/xml` or `text/xml` -> XML, the highest `q` wins, the first listed
  on a tie); JSON otherwise. Any other suffix or `format` value is 406 (Rails' UnknownFormat).
- Authentication: the `token` parameter BMC documents, and anything else jobyard accepts
  (Bearer, Basic). A missing or invalid token is 403, never 401.
- Errors: `{"error": "<message>"}` in JSON, `<errors><error>message</error></errors>` in XML
  (Rails' `errors.to_xml`), in the format the request asked for. BMC does not document a body.
- Fields, in the sample's order: `automation_id` is the job's package; `created_at` and
  `started_at` are when the run began (the run is created as it starts); `updated_at` is when
  it finished, else when it began; `job_type` is `automation` for command packages and
  `notification` for external ones; `results_path` is the native log of that attempt;
  `status` is Running, Complete, Problem (failed, timed out or lost) or Cancelled; a pending
  job has no run and so is not listed. Times are ISO 8601 in UTC, whole seconds, `+00:00`.
- `stdout` and `stderr` hold at most the first `OUTPUT_CAP` bytes (64 KiB) of each stream,
  decoded as UTF-8 (bad bytes replaced); null when the stream is empty. The whole output is at
  `results_path`.
- `step` is the `step` object given in the job's `context` at launch: `aasm_state`, `id`,
  `name` and `request` (`aasm_state`, `id`, `name`) in that order (null when not given), then
  any other keys alphabetically; null when the context has no step object.
- The list has no paging (BMC has none): it holds the newest `MAX_RUNS` (500) matching runs, in
  id order.
- Filters: `currently_running`, `run_key`, `status`, `job_type`, `process_id`,
  `automation_id`, `user_id` and `step_id`, given as `filters[x]=v`, as plain `x=v`, or in a GET
  body: JSON `{"filters": {"x": v}}` or XML `<filters><x>v</x></filters>` (`text/xml` or
  `application/xml`, or a body starting with `<`; dashed names are read as underscores). All of
  them must hold. `status` takes the BMC names (any case), `job_type` automation or
  notification. A bad value is 400, and so is an unknown name inside `filters` (query or body),
  an XML root other than `<filters>` and a malformed body. Unknown plain parameters, and other
  members of a JSON body (Rails merges them into `params`), are ignored unless they name a
  filter, since they share their place with `token`, `format` and the like. An empty or null
  value is no filter. A GET body is capped by the server's body limit, an XML one at 64 KiB,
  and an XML body with a DOCTYPE (hence entities) is refused.
- Anything else under `/v1/job_runs/` is 404; HEAD answers like GET without a body; every
  answer carries `X-Request-Id` (random, 32 hex), `X-Runtime` (seconds) and `X-UA-Compatible`;
  successful ones an `ETag` (the quoted MD5 of the body, as Rails makes it), `Cache-Control:
  max-age=0, private, must-revalidate` and `Vary: Accept`, and `If-None-Match` with that tag
  (or `*`) gives an empty 304.
"""

from jobyard.api.dialects.bmc.present import JOB_TYPES, STATUS_NAMES
from jobyard.api.dialects.bmc.routes import PREFIX, render_error, router

__all__ = ["JOB_TYPES", "PREFIX", "STATUS_NAMES", "render_error", "router"]
