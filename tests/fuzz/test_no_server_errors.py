"""A property-based run over every operation of the app's own OpenAPI document.

Schemathesis generates requests from `/openapi.json` as the server publishes it (parameters,
bodies and answers as the routes declare them) and sends them to a real server on SQLite (and
PostgreSQL under `make fuzz`), seeded with objects of two customers, as the system admin and
as a customer-2 operator. Every answer must be no 5xx, have a status code the operation
declares, a declared content type, and a body that conforms to the declared schema.
Each operation gets `JOBYARD_FUZZ_EXAMPLES` examples per caller in both of schemathesis's
modes (positive: what the schema allows; negative: what it does not). The run is seeded:
`JOBYARD_FUZZ_SEED` (a fixed default under `make test`, a random one under `make fuzz`) and
a failure names the seed that replays it. `make fuzz` runs the same with many more examples
and writes what it finds to `JOBYARD_FUZZ_REPORT`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as with_seed
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.api.app import create_app
from jobyard.settings import Settings
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.conftest import _truncate as truncate

FUZZ_MODE = "JOBYARD_FUZZ_EXAMPLES" in os.environ  # make fuzz
EXAMPLES = int(os.environ.get("JOBYARD_FUZZ_EXAMPLES", "8"))
REPORT = os.environ.get("JOBYARD_FUZZ_REPORT", "")
DEFAULT_SEED = 19
SEED = int(
    os.environ.get("JOBYARD_FUZZ_SEED") or (random.randrange(2**32) if FUZZ_MODE else DEFAULT_SEED)
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATOR_LOGIN, OPERATOR_PASSWORD = "fuzz-operator", "fuzz-operator-password"
# A request that follows a live job's output lasts as long as the job: cut it short.
STREAM_SECONDS, REQUEST_SECONDS = 1.0, 30.0
# Run last for each caller: they can take the caller's own credentials away.
SELF_DESTRUCTIVE = {
    ("PATCH", "/api/v1/users/{user_id}/"),
    ("DELETE", "/api/v1/users/{user_id}/"),
    ("DELETE", "/api/v1/tokens/{token_id}/"),
}

pytestmark = pytest.mark.slow


def openapi_of(app: Any) -> dict[str, Any]:
    found: dict[str, Any] = app.openapi()
    return found


# Which operations read a body ----------------------------------------------------------------


class BodyRead(Exception):
    """Raised from `receive`: the handler asked for the request body."""


class BodyProbe:
    """Records whether the app reads the request body, and stops it there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def probing_receive() -> Message:
            self.read = True
            raise BodyRead

        await self.app(scope, probing_receive, send)


def reads_body(client: TestClient, probe: BodyProbe, method: str, path: str) -> bool:
    """Whether the handler reads its body: every path parameter names an id that does not
    exist, so no handler finds anything to change before or instead of reading."""
    values = {"fmt": "json", "ident": "999999"}
    url = path.format_map(_Default(values, "999999"))
    probe.read = False
    headers = {"Customer-Id": "1", "Content-Type": "application/json"}
    with contextlib.suppress(BodyRead):
        client.request(method, url, headers=headers, content=b"{}")
    return probe.read


class _Default(dict[str, str]):
    def __init__(self, known: dict[str, str], default: str) -> None:
        super().__init__(known)
        self.default = default

    def __missing__(self, key: str) -> str:
        return self.default


def test_every_body_reading_operation_declares_its_body(tmp_path: Path) -> None:
    settings_ = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'jobyard.db'}", workers=0
    )
    settings_ = Settings(**{**settings_.__dict__, "admin_token": ADMIN_TOKEN})
    app = create_app(settings_, run_workers=False)
    probe = BodyProbe(app)
    readers, declared = set(), set()
    with TestClient(probe, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        for path, operations in openapi_of(app)["paths"].items():
            for method, operation in operations.items():
                if "requestBody" in operation:
                    declared.add((method.upper(), path))
                if reads_body(client, probe, method.upper(), path):
                    readers.add((method.upper(), path))
    assert len(readers) > 20, "the probe found too few body-reading operations to be right"
    missing = sorted(readers - declared)
    assert not missing, f"these operations read a body but declare none: {missing}"


# The server under fuzz --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    database: str
    url: str
    tokens: dict[str, str]
    schema: Any


def seed(url: str) -> str:
    """Customers 1 and 2 with packages, devices, configs, jobs that ran and jobs that wait,
    results, and a customer-2 operator; returns that operator's token."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, headers=admin, timeout=30) as http:

        def post(path: str, body: dict[str, Any], customer: str = "1") -> dict[str, Any]:
            answer = http.post(f"/api/v1/{path}", json=body, headers={"Customer-Id": customer})
            assert answer.status_code == 200, (path, answer.text)
            data: dict[str, Any] = answer.json()["data"]
            return data

        assert post("tenants/", {"name": "acme"})["id"] == "2"
        launched = []
        for customer in ("1", "2"):
            config = post("configs/", {"name": "c", "testvars": {"who": "x"}}, customer)
            device = post("devices/", {"name": "d", "attributes": {"a": "b"}}, customer)
            echo = {"name": "echo", "command": ["echo", "hi {who}"], "config_id": config["id"]}
            package = post("packages/", echo | {"device_id": device["id"]}, customer)
            external = post(
                "packages/",
                {"name": "ext", "kind": "external", "positive_results": ["ok"]},
                customer,
            )
            for package_id in (package["id"], external["id"]):
                job = post("jobs/", {"package_id": package_id}, customer)
                launched.append((job["id"], customer))
            post(f"jobs/{job['id']}/start/", {}, customer)
            post(f"jobs/{job['id']}/results/", {"note": "seeded"}, customer)
        user = {"login": OPERATOR_LOGIN, "password": OPERATOR_PASSWORD, "role": "operator"}
        post("users/", user, "2")
        for job_id, customer in launched[0::2]:  # the echo jobs: wait until they ran
            for _ in range(500):
                answer = http.get(f"/api/v1/jobs/{job_id}/", headers={"Customer-Id": customer})
                status = answer.json()["data"]["status"]
                if status == "completed":
                    break
                http.get("/healthz")
            assert status == "completed", (job_id, status)
        login = http.post(
            "/authenticate", params={"username": OPERATOR_LOGIN, "password": OPERATOR_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token: str = login.json()["data"]["token"]
        return token


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not FUZZ_MODE, reason="make fuzz runs this on PostgreSQL; make test on SQLite"
                ),
            ],
        ),
    ],
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A server on a fresh database: seeded with a worker, then fuzzed without one (the
    fuzzer defines packages, and what they run is not for this machine to execute)."""
    data = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{data / 'jobyard.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        truncate(url)
    base = Settings(
        data_dir=data,
        database_url=url,
        workers=1,
        admin_token=ADMIN_TOKEN,
        run_as="server",  # the seed's jobs are echo: this test is about the API, not isolation
        runs_dir=data / "runs",
        cancel_grace_seconds=0.5,
        drain_seconds=0.5,
    )
    with LiveServer(base) as seeding:
        operator_token = seed(seeding.url)
    with LiveServer(Settings(**{**base.__dict__, "workers": 0})) as server:
        published = httpx.get(f"{server.url}/openapi.json", timeout=REQUEST_SECONDS)
        published.raise_for_status()
        yield Target(
            database=request.param,
            url=server.url,
            tokens={"customer-2 operator": operator_token, "system admin": ADMIN_TOKEN},
            schema=schemathesis.openapi.from_dict(published.json()),
        )


# Findings ---------------------------------------------------------------------------------------


class ServerErrors(logging.Handler):
    """Keeps the tracebacks the app logs for its 500s (the server runs in this process)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


def where(tb: TracebackType | None) -> tuple[str, str]:
    """The traceback's last frame, and its last frame in jobyard's own code."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "", ""
    ours = [f for f in frames if "/jobyard/" in f.filename]

    def show(f: traceback.FrameSummary) -> str:
        short = f.filename
        for marker in ("/site-packages/", "/src/jobyard/"):
            short = short.split(marker, 1)[-1]
        return f"{short}:{f.lineno} in {f.name}"

    return show(frames[-1]), show(ours[-1]) if ours else ""


@dataclass
class Finding:
    operation: str
    status: str
    error: str
    last_frame: str
    our_frame: str
    caller: str
    curl: str
    seen: int = 1

    def describe(self) -> str:
        frames = self.last_frame + (f" (jobyard: {self.our_frame})" if self.our_frame else "")
        return (
            f"{self.operation} → {self.status}: {self.error}\n"
            f"    at {frames}\n"
            f"    seen {self.seen} times; shortest, as the {self.caller}:\n"
            f"    {self.curl}"
        )


@dataclass
class Findings:
    by_key: dict[tuple[str, ...], Finding] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        key = (finding.operation, finding.status, finding.error.split(":")[0], finding.our_frame)
        known = self.by_key.get(key)
        if known is None:
            self.by_key[key] = finding
            return
        known.seen += 1
        if len(finding.curl) < len(known.curl):
            known.curl, known.caller = finding.curl, finding.caller

    def report(self) -> str:
        return "\n".join(f.describe() for f in sorted(self.by_key.values(), key=_order))


def _order(finding: Finding) -> tuple[str, str]:
    return finding.operation, finding.our_frame


@pytest.fixture(scope="module")
def report() -> Iterator[list[Finding]]:
    """Every test's findings, written to JOBYARD_FUZZ_REPORT at the end."""
    found: list[Finding] = []
    yield found
    if REPORT:
        lines = [f"- {f.describe()}" for f in sorted(found, key=_order)]
        Path(REPORT).write_text("\n".join(lines) + "\n" if lines else "no failures\n")


@pytest.fixture
def findings(report: list[Finding]) -> Iterator[Findings]:
    found = Findings()
    yield found
    report.extend(found.by_key.values())


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    logger = logging.getLogger("jobyard.api.errors")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# The run ----------------------------------------------------------------------------------------


def caller_call(
    target: Target, caller: str, errors: ServerErrors, findings: Findings
) -> Callable[[schemathesis.Case], None]:
    auth = {"Authorization": f"Bearer {target.tokens[caller]}"}
    who = f"{caller} on {target.database}"

    def call(case: schemathesis.Case) -> None:
        # Credentials are the caller's: the ones drawn from the security schemes would only
        # make every request a 401.
        for name in ("token", "api-token"):
            (case.query or {}).pop(name, None)
        streaming = "event-stream" in str((case.headers or {}).get("Accept", ""))
        errors.records.clear()
        try:
            response = case.call(
                base_url=target.url,
                headers=auth,
                timeout=STREAM_SECONDS if streaming else REQUEST_SECONDS,
            )
        except requests.RequestException as exc:
            curl = case.as_curl_command(headers=auth, base_url=target.url)
            findings.add(
                Finding(case.operation.label, "no answer", repr(exc)[:200], "", "", who, curl)
            )
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except schemathesis.errors.FailureGroup as group:
            curl = case.as_curl_command(headers=auth, base_url=target.url)
            for broken in group.exceptions:
                findings.add(failure(case, response, broken, errors, who, curl))

    return call


def failure(
    case: schemathesis.Case,
    response: schemathesis.Response,
    broken: Exception,
    errors: ServerErrors,
    caller: str,
    curl: str,
) -> Finding:
    if response.status_code < 500:
        title = getattr(broken, "title", type(broken).__name__)
        message = " ".join(str(getattr(broken, "message", broken)).split())
        error = f"{title}: {message[:300]}"
        return Finding(case.operation.label, str(response.status_code), error, "", "", caller, curl)
    if errors.records and errors.records[-1].exc_info:
        _kind, exc, tb = errors.records[-1].exc_info
        first_line = (str(exc).splitlines() or [""])[0]
        error = f"{type(exc).__name__}: {first_line[:160]}"
        last, ours = where(tb)
    else:
        error, last, ours = response.text[:200], "", ""
    return Finding(case.operation.label, str(response.status_code), error, last, ours, caller, curl)


def examples(operation: Any, call: Callable[..., None]) -> None:
    """The examples the document gives (ids of seeded objects, typical bodies), so that
    successful answers are checked too, not only refusals of random input."""
    for strategy in operation.get_strategies_from_examples():

        @with_seed(SEED)
        @settings(
            max_examples=1,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            call(case)

        run()


def fuzz(operation: Any, mode: schemathesis.GenerationMode, call: Callable[..., None]) -> None:
    @with_seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        call(case)

    try:
        run()
    except Unsatisfiable:
        # An operation whose every input is valid (no parameters, no body) has nothing to
        # send in negative mode.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise


def still_signed_in(target: Target, caller: str) -> bool:
    answer = requests.get(
        f"{target.url}/api/v1/users/me/",
        headers={"Authorization": f"Bearer {target.tokens[caller]}"},
        timeout=REQUEST_SECONDS,
    )
    return answer.status_code == 200


def operations_in_order(target: Target) -> list[Any]:
    found = [r.ok() for r in target.schema.get_all_operations()]
    return sorted(
        (o for o in found if o is not None),
        key=lambda o: (o.method.upper(), o.path) in SELF_DESTRUCTIVE,
    )


@pytest.mark.parametrize("caller", ["customer-2 operator", "system admin"])
def test_no_operation_answers_a_server_error(
    target: Target, caller: str, server_errors: ServerErrors, findings: Findings
) -> None:
    call = caller_call(target, caller, server_errors, findings)
    for operation in operations_in_order(target):
        key = (operation.method.upper(), operation.path)
        assert key in SELF_DESTRUCTIVE or still_signed_in(target, caller), (
            f"the {caller} lost its credentials before {operation.label}: the run is void"
        )
        examples(operation, call)
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz(operation, mode, call)
    if findings.by_key:
        listed = findings.report()
        count = len(findings.by_key)
        pytest.fail(
            f"{count} distinct failures as the {caller} (replay: JOBYARD_FUZZ_SEED={SEED}):\n"
            f"{listed}",
            pytrace=False,
        )
