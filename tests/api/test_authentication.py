"""Who is calling: passwords, tokens, the CDRouter login flow, job tokens, lockout and audit.

Credentials come in as `Authorization: Bearer`, HTTP Basic (login and password, or a token as
the password), a `token` query parameter, or through CDRouter's `/authenticate`. Secrets are
stored hashed and never logged; tokens can do no more than their user's role, can expire and
be revoked; a running job gets a token that reads that job only and dies with it.
"""

from __future__ import annotations

import base64
import logging
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import sqlalchemy as sa
import uvicorn
from cdrouter import CDRouter
from cdrouter.cdrouter import CDRouterError
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings, load_settings
from jobyard.store.db import normalise_url
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

API = "/api/v1"
FUTURE = "9999-01-01T00:00:00Z"
PASSWORD = "long-enough-pw"
OK, NO_CONTENT, BAD, UNAUTHORIZED = 200, 204, 400, 401
FORBIDDEN, TOO_MANY = 403, 429
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}
NONE = {"Authorization": ""}  # overrides the admin credentials of the `client` fixture


def basic(login: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def data(response: httpx.Response | requests.Response) -> Any:
    assert response.status_code == OK, response.text
    return response.json()["data"]


def refused(response: httpx.Response | requests.Response, status: int, *words: str) -> str:
    """Assert the status (401s carry WWW-Authenticate) and that the error names `words`."""
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    for word in words:
        assert word in message, (word, message)
    if status == UNAUTHORIZED:
        assert "www-authenticate" in response.headers, response.headers
    return message


def _job_token_checks(log: str) -> dict[str, str]:
    """The job's own report of what its token could do: its job, log and events; no list
    and no other job. Returns every line of the report by its first word."""
    lines = dict(line.split(" ", 1) for line in log.splitlines())
    assert {k: lines.get(k) for k in ("own", "log", "events", "list", "other")} == {
        "own": "200",
        "log": "200",
        "events": "200",
        "list": "403",
        "other": "403",
    }, log
    return lines


def user(client: TestClient, login: str, role: str = "operator") -> str:
    body = {"login": login, "password": PASSWORD, "role": role}
    user_id: str = data(client.post(f"{API}/users/", json=body))["id"]
    return user_id


def token(client: TestClient, auth: dict[str, str], *scopes: str, **extra: Any) -> dict[str, Any]:
    body = {"name": "t", "scopes": list(scopes)} | extra
    created: dict[str, Any] = data(client.post(f"{API}/tokens/", json=body, headers=auth))
    return created


def me(client: TestClient, headers: dict[str, str], path: str = "/users/me/") -> httpx.Response:
    return client.get(API + path, headers=headers)


def stamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


# Ways in ----------------------------------------------------------------------------------


def test_bearer_basic_and_query_parameter(client: TestClient) -> None:
    op_id = user(client, "op")
    user(client, "other")
    as_op = basic("op", PASSWORD)
    secret = token(client, as_op, "jobs:read")["token"]

    ways = {
        "basic password": as_op,
        "bearer": bearer(secret),
        "basic token with login": basic("op", secret),
        "basic token without login": basic("", secret),
    }
    for way, headers in ways.items():
        found = data(me(client, headers))
        assert (found["id"], found["login"]) == (op_id, "op"), way
        assert client.get(f"{API}/jobs/", headers=headers).status_code == OK, way
    found = data(me(client, NONE, f"/users/me/?token={secret}"))
    assert found["login"] == "op"
    assert client.get(f"{API}/jobs/?token={secret}", headers=NONE).status_code == OK

    # Missing or wrong credentials: 401 with WWW-Authenticate.
    for headers in (
        NONE,
        bearer("jy_wrong"),
        basic("op", "wrong-password"),
        basic("nobody", PASSWORD),
        basic("other", secret),  # someone else's login with op's token
        basic("", "jy_wrong"),
    ):
        refused(me(client, headers), UNAUTHORIZED)
    refused(me(client, NONE, "/users/me/?token=jy_wrong"), UNAUTHORIZED)
    refused(client.get(f"{API}/system/hostname/", headers=NONE), UNAUTHORIZED)


def test_the_bootstrap_admin_and_its_password(settings: Settings) -> None:
    """JOBYARD_ADMIN_PASSWORD gives the admin of tenant 1 (login `admin`) its password; a new
    value on a later start replaces the old one; JOBYARD_ADMIN_TOKEN keeps working."""
    assert load_settings({"JOBYARD_ADMIN_PASSWORD": "first-password"}).admin_password == (
        "first-password"
    )
    first = Settings(**{**settings.__dict__, "admin_password": "first-password"})
    with TestClient(create_app(first)) as client:
        found = data(me(client, basic("admin", "first-password")))
        assert (found["login"], found["role"], found["customer_id"]) == ("admin", "admin", "1")
        assert data(me(client, bearer(ADMIN_TOKEN)))["id"] == found["id"]
        logged_in = data(client.post("/authenticate?username=admin&password=first-password"))
        assert data(me(client, bearer(logged_in["token"])))["id"] == found["id"]
    second = Settings(**{**settings.__dict__, "admin_password": "second-password"})
    with TestClient(create_app(second)) as client:
        assert me(client, basic("admin", "second-password")).status_code == OK
        refused(me(client, basic("admin", "first-password")), UNAUTHORIZED)
        assert me(client, bearer(ADMIN_TOKEN)).status_code == OK
        listed = data(client.get(f"{API}/users/", headers=bearer(ADMIN_TOKEN)))
        assert [u["login"] for u in listed if u["role"] == "admin"] == ["admin"]


# The CDRouter login flow --------------------------------------------------------------------


@pytest.fixture
def native(live_server: LiveServer) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers.update(AUTH)
    yield session
    session.close()


def test_the_cdrouter_login_flow(live_server: LiveServer, native: requests.Session) -> None:
    url = live_server.url
    data(
        native.post(
            f"{url}{API}/users/", json={"login": "op", "password": PASSWORD, "role": "operator"}
        )
    )
    package = data(native.post(f"{url}{API}/packages/", json={"name": "p", "command": ["true"]}))
    job = data(
        native.post(f"{url}{API}/jobs/", json={"package_id": package["id"], "run_at": FUTURE})
    )

    # What the client does, step by step.
    refused(requests.get(f"{url}{API}/system/hostname/", timeout=10), UNAUTHORIZED)
    answer = requests.post(
        f"{url}/authenticate", params={"username": "op", "password": PASSWORD}, timeout=10
    )
    logged_in = data(answer)
    assert logged_in["name"] == "op"
    assert logged_in["token"]
    listed = requests.get(f"{url}{API}/jobs/", headers=bearer(logged_in["token"]), timeout=10)
    assert [j["id"] for j in data(listed)] == [job["id"]]
    refused(
        requests.post(
            f"{url}/authenticate", params={"username": "op", "password": "nope-nope"}, timeout=10
        ),
        UNAUTHORIZED,
    )
    refused(
        requests.post(
            f"{url}/authenticate", params={"username": "nobody", "password": PASSWORD}, timeout=10
        ),
        UNAUTHORIZED,
    )

    # The real client logs in by itself on its first request.
    c = CDRouter(url, username="op", password=PASSWORD)
    assert [j.id for j in c.jobs.list().data] == [int(job["id"])]
    assert c.token
    assert c.token != logged_in["token"]
    assert c.jobs.get(job["id"]).id == int(job["id"])

    def no_prompt(base: str, username: str) -> str:
        return "still-wrong"

    wrong = CDRouter(url, username="op", password="wrong-pass", retries=0, _getpass=no_prompt)
    with pytest.raises(CDRouterError):
        wrong.jobs.list()


# Tokens -----------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_listed_without_its_secret(client: TestClient) -> None:
    user(client, "op")
    as_op = basic("op", PASSWORD)
    created = token(client, as_op, "jobs:read", name="ci")
    secret = created["token"]
    assert len(secret) >= 20
    assert (created["name"], created["scopes"]) == ("ci", ["jobs:read"])
    for auth in (as_op, AUTH):
        for path in ("/tokens/", f"/tokens/?filter=id={created['id']}", "/tokens/?limit=none"):
            response = client.get(API + path, headers=auth)
            listed = data(response)
            assert created["id"] in [t["id"] for t in listed], (auth, path)
            assert all("token" not in t for t in listed)
            assert secret not in response.text


def test_token_scopes_never_exceed_the_role(client: TestClient) -> None:
    user(client, "viewer", role="viewer")
    user(client, "op", role="operator")
    as_viewer, as_op = basic("viewer", PASSWORD), basic("op", PASSWORD)
    for auth, scope in (
        (as_viewer, "jobs:write"),
        (as_viewer, "packages:write"),
        (as_viewer, "admin"),
        (as_op, "packages:write"),
        (as_op, "admin"),
    ):
        response = client.post(
            f"{API}/tokens/", json={"name": "x", "scopes": [scope]}, headers=auth
        )
        refused(response, FORBIDDEN, scope)
    mixed = {"name": "x", "scopes": ["jobs:read", "jobs:write"]}
    refused(client.post(f"{API}/tokens/", json=mixed, headers=as_viewer), FORBIDDEN, "jobs:write")
    # A token cannot mint a token with more than itself.
    reader = bearer(token(client, as_op, "jobs:read")["token"])
    body = {"name": "x", "scopes": ["jobs:write"]}
    refused(client.post(f"{API}/tokens/", json=body, headers=reader), FORBIDDEN, "jobs:write")
    # Unknown or no scopes are bad requests.
    for scopes in (["jobs:delete"], [], ["jobs"]):
        body = {"name": "x", "scopes": scopes}
        assert client.post(f"{API}/tokens/", json=body, headers=as_op).status_code == BAD, scopes

    # A token is limited by its user's role as it is now, not as it was.
    package = data(client.post(f"{API}/packages/", json={"name": "p", "command": ["true"]}))
    writer = bearer(token(client, as_op, "jobs:write")["token"])
    launch = {"package_id": package["id"], "run_at": FUTURE}
    assert client.post(f"{API}/jobs/", json=launch, headers=writer).status_code == OK
    op_id = data(me(client, as_op))["id"]
    data(client.patch(f"{API}/users/{op_id}/", json={"role": "viewer"}))
    refused(client.post(f"{API}/jobs/", json=launch, headers=writer), FORBIDDEN, "jobs:write")
    refused(client.post(f"{API}/jobs/", json=launch, headers=as_op), FORBIDDEN, "jobs:write")


def test_a_revoked_token_fails_on_its_next_request(client: TestClient) -> None:
    user(client, "op")
    as_op = basic("op", PASSWORD)
    created = token(client, as_op, "jobs:read")
    secret = created["token"]
    assert me(client, bearer(secret)).status_code == OK
    assert client.delete(f"{API}/tokens/{created['id']}/", headers=as_op).status_code == NO_CONTENT
    for headers, path in (
        (bearer(secret), "/users/me/"),
        (basic("op", secret), "/users/me/"),
        (basic("", secret), "/users/me/"),
        (NONE, f"/users/me/?token={secret}"),
    ):
        refused(me(client, headers, path), UNAUTHORIZED)

    # A token may revoke itself; an admin may revoke anyone's of the tenant.
    own = token(client, as_op, "jobs:read")
    response = client.delete(f"{API}/tokens/{own['id']}/", headers=bearer(own["token"]))
    assert response.status_code == NO_CONTENT, response.text
    refused(me(client, bearer(own["token"])), UNAUTHORIZED)
    theirs = token(client, as_op, "jobs:read")
    assert client.delete(f"{API}/tokens/{theirs['id']}/").status_code == NO_CONTENT
    refused(me(client, bearer(theirs["token"])), UNAUTHORIZED)
    # ...but not an operator another user's.
    user(client, "op2")
    other = token(client, basic("op2", PASSWORD), "jobs:read")
    refused(client.delete(f"{API}/tokens/{other['id']}/", headers=as_op), FORBIDDEN)
    assert me(client, bearer(other["token"])).status_code == OK


def test_expiring_tokens(client: TestClient) -> None:
    user(client, "op")
    as_op = basic("op", PASSWORD)
    short = token(client, as_op, "jobs:read", expires_in=1)
    expires = stamp(short["expires"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=2)
    assert me(client, bearer(short["token"])).status_code == OK

    at = "2999-01-02T03:04:05Z"
    later = token(client, as_op, "jobs:read", expires=at)
    assert stamp(later["expires"]) == datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    offset = token(client, as_op, "jobs:read", expires="2999-01-02T04:04:05+01:00")
    assert stamp(offset["expires"]) == datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    forever = token(client, as_op, "jobs:read")
    assert forever["expires"] in {"", None}

    for bad in (
        {"expires": "2000-01-01T00:00:00Z"},
        {"expires": "tomorrow"},
        {"expires_in": 0},
        {"expires_in": -5},
        {"expires": at, "expires_in": 60},
    ):
        body = {"name": "x", "scopes": ["jobs:read"]} | bad
        assert client.post(f"{API}/tokens/", json=body, headers=as_op).status_code == BAD, bad

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    for headers, path in (
        (bearer(short["token"]), "/users/me/"),
        (basic("op", short["token"]), "/users/me/"),
        (NONE, f"/users/me/?token={short['token']}"),
    ):
        refused(me(client, headers, path), UNAUTHORIZED)
    assert me(client, bearer(later["token"])).status_code == OK
    assert me(client, bearer(forever["token"])).status_code == OK


def test_last_used_is_recorded(client: TestClient) -> None:
    user(client, "op")
    as_op = basic("op", PASSWORD)
    created = token(client, as_op, "jobs:read")
    assert created["last_used"] in {"", None}
    before = datetime.now(UTC)
    assert client.get(f"{API}/jobs/", headers=bearer(created["token"])).status_code == OK
    listed = data(client.get(f"{API}/tokens/?filter=id={created['id']}", headers=as_op))
    assert len(listed) == 1
    used = stamp(listed[0]["last_used"])
    assert before - timedelta(seconds=1) <= used <= datetime.now(UTC) + timedelta(seconds=1)


# Secrets never in clear ---------------------------------------------------------------------


def _secrets_everywhere(client: TestClient, tmp_path: Path) -> list[str]:
    """Exercise everything that handles a secret; return the secrets used."""
    secrets = [ADMIN_TOKEN, PASSWORD, "the-second-password", "a-wrong-password"]
    user(client, "op")
    user(client, "viewer", role="viewer")
    as_op = basic("op", PASSWORD)
    secrets.append(token(client, as_op, "jobs:read", "jobs:write")["token"])
    secrets.append(token(client, AUTH, "admin", expires_in=3600)["token"])
    revoked = token(client, as_op, "jobs:read")
    secrets.append(revoked["token"])
    client.delete(f"{API}/tokens/{revoked['id']}/", headers=as_op)
    for path in ("/authenticate?username=op&password=" + PASSWORD, "/authenticate"):
        body = None if "?" in path else {"username": "op", "password": PASSWORD}
        secrets.append(data(client.post(path, json=body, headers=NONE))["token"])
    assert me(client, basic("op", "a-wrong-password")).status_code == UNAUTHORIZED
    assert me(client, NONE, f"/users/me/?token={secrets[-1]}").status_code == OK
    viewer_id = data(me(client, basic("viewer", PASSWORD)))["id"]
    change = {"password": "the-second-password", "current_password": PASSWORD}
    data(client.patch(f"{API}/users/{viewer_id}/", json=change, headers=basic("viewer", PASSWORD)))
    # A job's own token: the job writes it to a file, not to its output.
    seen = tmp_path / "job-token"
    code = "import os, sys; open(sys.argv[1], 'w').write(os.environ['JOBYARD_TOKEN'])"
    package = data(
        client.post(
            f"{API}/packages/",
            json={"name": "p", "command": [sys.executable, "-c", code, str(seen)]},
        )
    )
    job = data(client.post(f"{API}/jobs/", json={"package_id": package["id"]}))
    _wait(client, job["id"])
    assert seen.read_text(), "the job got no token"
    secrets.append(seen.read_text())
    return secrets


def _wait(client: TestClient, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = data(client.get(f"{API}/jobs/{job_id}/", headers=AUTH))
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is still {job['status']}"
        time.sleep(0.02)


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


# The reflection reads every table's rows; SQLAlchemy reflects no index of an expression on
# SQLite (the job options' partial indexes), which is nothing this test reads.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_no_secret_is_stored_in_clear(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    secrets = _secrets_everywhere(client, tmp_path)
    engine = sa.create_engine(normalise_url(settings.database_url))
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        found: list[str] = []
        hashes: list[str] = []
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    cells = " ".join(_text(v) for v in row)
                    found += [f"{table.name}: {s!r}" for s in secrets if s in cells]
                    if table.name == "users" and row._mapping["password_hash"]:
                        hashes.append(row._mapping["password_hash"])
    finally:
        engine.dispose()
    assert sorted(metadata.tables)
    assert "users" in metadata.tables
    assert "tokens" in metadata.tables
    assert not found, found
    assert len(hashes) == 3  # op, viewer, and the admin's password made at the first start
    assert all(h.startswith("$argon2") for h in hashes), hashes


def test_no_secret_is_logged(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = _secrets_everywhere(client, tmp_path)
    # Also a lockout, a bad token and a crash-free refusal of everything else.
    for _ in range(6):
        me(client, basic("op", "a-wrong-password"))
    me(client, bearer("jy_not-a-token"))
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side, "nothing was logged at all: is caplog capturing?"
    leaks = []
    for record in server_side:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        leaks += [f"{record.name}: {s!r}" for s in [*secrets, "a-wrong-password"] if s in text]
    assert not leaks, leaks


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {self.format(record)}")


def test_no_secret_in_the_logs_of_a_served_server(settings: Settings) -> None:
    """Served as `jobyard serve` serves by default (uvicorn at log level info, so with access
    lines), the CDRouter login (password in the query string) and `?token=` leave no secret
    in any log line."""
    server = LiveServer(settings)
    server.server = uvicorn.Server(
        uvicorn.Config(
            server.server.config.app,
            host="127.0.0.1",
            port=server.settings.port,
            log_level="info",
            loop="asyncio",
            http="httptools",
            lifespan="on",
        )
    )
    server.thread = threading.Thread(target=server.server.run, daemon=True)
    collect = _Collect()
    names = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "jobyard")
    for name in names:
        logging.getLogger(name).addHandler(collect)
    try:
        with server:
            url = server.url
            body = {"login": "op", "password": PASSWORD, "role": "operator"}
            data(requests.post(f"{url}{API}/users/", json=body, headers=AUTH, timeout=10))
            c = CDRouter(url, username="op", password=PASSWORD)
            c.jobs.list()
            assert c.token
            jobs = requests.get(f"{url}{API}/jobs/", params={"token": c.token}, timeout=10)
            assert jobs.status_code == OK, jobs.text
            wrong = requests.post(
                f"{url}/authenticate",
                params={"username": "op", "password": "a-wrong-pw"},
                timeout=10,
            )
            assert wrong.status_code == UNAUTHORIZED
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(collect)
    assert any("uvicorn.access" in line for line in collect.lines), collect.lines
    leaks = [
        line
        for line in collect.lines
        for secret in (PASSWORD, c.token, "a-wrong-pw", ADMIN_TOKEN)
        if secret in line
    ]
    assert not leaks, "\n".join(leaks)


# Brute force --------------------------------------------------------------------------------


def test_five_bad_passwords_lock_the_login(client: TestClient) -> None:
    user(client, "op")
    user(client, "bystander")
    for attempt in range(5):
        response = me(client, basic("op", f"wrong-password-{attempt}"))
        refused(response, UNAUTHORIZED)
    for attempt in (
        lambda: me(client, basic("op", PASSWORD)),
        lambda: me(client, basic("op", "wrong-password-again")),
        lambda: client.post(f"/authenticate?username=op&password={PASSWORD}", headers=NONE),
    ):
        response = attempt()
        assert response.status_code == TOO_MANY, response.text
        wait = int(response.headers["retry-after"])
        assert 0 < wait <= 60, wait
    # Other logins are not affected.
    assert me(client, basic("bystander", PASSWORD)).status_code == OK

    # Failures through /authenticate count the same.
    for attempt in range(5):
        path = f"/authenticate?username=bystander&password=wrong-{attempt}"
        refused(client.post(path, headers=NONE), UNAUTHORIZED)
    response = me(client, basic("bystander", PASSWORD))
    assert response.status_code == TOO_MANY, response.text
    assert "retry-after" in response.headers


def test_forty_bad_passwords_at_once_hash_five_and_lock_the_rest_out(
    live_server: LiveServer, native: requests.Session
) -> None:
    """Each try is counted in the database before its hash is checked: of forty wrong
    passwords sent at once, at most five are checked (401), the rest are refused unhashed."""
    url = live_server.url
    body = {"login": "op", "password": PASSWORD, "role": "operator"}
    data(native.post(f"{url}{API}/users/", json=body, timeout=10))

    def attempt(number: int) -> httpx.Response:
        headers = basic("op", f"wrong-password-{number}")
        return httpx.get(f"{url}{API}/users/me/", headers=headers, timeout=60)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(attempt, range(40)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {UNAUTHORIZED, TOO_MANY}, statuses
    assert 1 <= statuses.count(UNAUTHORIZED) <= 5, statuses
    for answer in answers:
        if answer.status_code == TOO_MANY:
            refused(answer, TOO_MANY, "too many failed logins")
            assert 0 < int(answer.headers["retry-after"]) <= 60
    response = httpx.get(f"{url}{API}/users/me/", headers=basic("op", PASSWORD), timeout=10)
    assert response.status_code == TOO_MANY, (statuses, response.status_code, response.text)
    assert "retry-after" in response.headers


def test_a_login_that_does_not_exist_answers_like_one_that_does(client: TestClient) -> None:
    """The same 401 for a wrong password and an unknown login, and the same lockout."""
    user(client, "op")
    answers = {}
    for login in ("op", "nobody"):
        answers[login] = [me(client, basic(login, f"wrong-password-{n}")) for n in range(6)]
    for login, tries in answers.items():
        assert [t.status_code for t in tries] == [UNAUTHORIZED] * 5 + [TOO_MANY], login
        assert tries[-1].json()["error"] == (
            f"too many failed logins for {login!r}; try again in 60 s"
        )
        assert tries[-1].headers["retry-after"] == "60"
    assert {t.json()["error"] for t in answers["op"][:5] + answers["nobody"][:5]} == {
        "invalid username or password"
    }


def _wrong_password_ms(client: TestClient, login: str) -> float:
    started = time.perf_counter()
    response = me(client, basic(login, "a-wrong-password"))
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == UNAUTHORIZED, response.text
    return elapsed


def test_a_missing_login_takes_as_long_as_a_wrong_password(client: TestClient) -> None:
    """An unknown login is checked against a dummy argon2 hash: the medians of a few tries
    each are within 30 % (a round is repeated on a noisy machine; without the dummy hash
    the unknown login answers several times faster and no round passes)."""
    me(client, basic("warm-up", "a-wrong-password"))  # makes the dummy hash once
    rounds = []
    for attempt in range(3):
        logins = [f"op{attempt}-{n}" for n in range(2)]
        for login in logins:
            user(client, login)
        existing: list[float] = []
        missing: list[float] = []
        for _ in range(4):  # four tries a login: below the lockout
            for n, login in enumerate(logins):
                existing.append(_wrong_password_ms(client, login))
                missing.append(_wrong_password_ms(client, f"ghost{attempt}-{n}"))
        fast, slow = sorted([statistics.median(existing), statistics.median(missing)])
        rounds.append((round(statistics.median(existing)), round(statistics.median(missing))))
        if slow - fast < 0.3 * slow:
            return
    pytest.fail(f"medians (existing, missing) in ms differ by 30 % or more: {rounds}")


# Passwords ----------------------------------------------------------------------------------


def test_a_user_changes_their_own_password(client: TestClient) -> None:
    op_id = user(client, "op")
    other_id = user(client, "other")
    as_op = basic("op", PASSWORD)
    path = f"{API}/users/{op_id}/"
    new = "a-brand-new-password"

    refused(
        client.patch(
            path, json={"password": new, "current_password": "not-it-at-all"}, headers=as_op
        ),
        FORBIDDEN,
    )
    response = client.patch(path, json={"password": new}, headers=as_op)
    assert response.status_code in {BAD, FORBIDDEN}, response.text
    response = client.patch(
        path, json={"password": "short", "current_password": PASSWORD}, headers=as_op
    )
    assert response.status_code == BAD, response.text
    assert me(client, as_op).status_code == OK  # nothing changed so far

    # Neither someone else's password nor one's own role.
    body = {"password": new, "current_password": PASSWORD}
    refused(client.patch(f"{API}/users/{other_id}/", json=body, headers=as_op), FORBIDDEN)
    refused(client.patch(path, json={"role": "admin"}, headers=as_op), FORBIDDEN, "admin")

    assert data(client.patch(path, json=body, headers=as_op))["id"] == op_id
    refused(me(client, as_op), UNAUTHORIZED)
    refused(
        client.post(f"/authenticate?username=op&password={PASSWORD}", headers=NONE), UNAUTHORIZED
    )
    assert data(me(client, basic("op", new)))["id"] == op_id
    assert me(client, basic("other", PASSWORD)).status_code == OK


def _live(client: TestClient, secret: str) -> bool:
    return me(client, bearer(secret)).status_code == OK


def test_a_new_password_revokes_the_user_s_tokens(client: TestClient) -> None:
    """A password change revokes the user's API tokens and login sessions, except the token
    the user changes their own password with; `keep_tokens` keeps them all; each revocation
    is in the audit trail."""
    op_id = user(client, "op")
    path = f"{API}/users/{op_id}/"
    as_op = basic("op", PASSWORD)
    caller = token(client, as_op, "jobs:read")["token"]
    other = token(client, as_op, "jobs:read", "jobs:write")
    session = data(client.post(f"/authenticate?username=op&password={PASSWORD}", headers=NONE))
    admins = token(client, AUTH, "admin")["token"]  # someone else's: untouched throughout

    change = {"password": "second-password", "current_password": PASSWORD}
    data(client.patch(path, json=change, headers=bearer(caller)))
    assert _live(client, caller)
    assert not _live(client, other["token"])
    assert not _live(client, session["token"])
    revocations = data(
        client.get(f"{API}/events/", params={"filter": "action=token.revoke", "limit": "none"})
    )
    assert len(revocations) == 2
    assert other["id"] in {e["object_id"] for e in revocations}
    for event in revocations:
        assert event["user_id"] == op_id  # who did it
        assert event["detail"] == {"reason": "password changed", "user_id": int(op_id)}

    # Kept when asked, by the user or an admin.
    as_op = basic("op", "second-password")
    fresh = token(client, as_op, "jobs:read")["token"]
    change = {"password": "third-password", "current_password": "second-password"}
    data(client.patch(path, json=change | {"keep_tokens": True}, headers=as_op))
    data(client.patch(path, json={"password": "fourth-password", "keep_tokens": True}))
    assert _live(client, caller)
    assert _live(client, fresh)

    # An admin's change revokes all of them; a role change alone revokes nothing.
    data(client.patch(path, json={"role": "viewer"}))
    assert _live(client, fresh)
    data(client.patch(path, json={"password": "fifth-password"}))
    assert not _live(client, caller)
    assert not _live(client, fresh)
    assert _live(client, admins)
    assert me(client, basic("op", "fifth-password")).status_code == OK
    refused(client.patch(path, json={"password": "sixth-password", "keep_tokens": "maybe"}), BAD)


def test_wrong_current_passwords_count_towards_the_lockout(client: TestClient) -> None:
    op_id = user(client, "op")
    caller = token(client, basic("op", PASSWORD), "jobs:read")["token"]
    path = f"{API}/users/{op_id}/"
    for number in range(5):
        change = {"password": "a-new-password", "current_password": f"wrong-{number}-pw"}
        refused(client.patch(path, json=change, headers=bearer(caller)), FORBIDDEN, "current")
    change = {"password": "a-new-password", "current_password": PASSWORD}
    response = client.patch(path, json=change, headers=bearer(caller))
    assert response.status_code == TOO_MANY, response.text


# Job tokens -------------------------------------------------------------------------------

JOB_CODE = """
import os, pathlib, sys, time
import urllib.error, urllib.request
base = os.environ['JOBYARD_URL'] + '/api/v1/jobs/'
mine = os.environ['JOBYARD_JOB_ID']
secret = os.environ['JOBYARD_TOKEN']
def status(path):
    request = urllib.request.Request(base + path)
    request.add_header('Authorization', 'Bearer ' + secret)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code
checks = [('own', mine + '/'), ('log', mine + '/log/'), ('events', mine + '/events/')]
checks += [('list', ''), ('other', sys.argv[1] + '/')]
for name, path in checks:
    print(name, status(path), flush=True)
print('token', secret, flush=True)
flag = pathlib.Path(sys.argv[2])
deadline = time.time() + 60
while not flag.exists() and time.time() < deadline:
    time.sleep(0.05)
"""


def _job_log(session: requests.Session, url: str, job_id: str) -> str:
    answer = session.get(f"{url}{API}/jobs/{job_id}/log/", timeout=10)
    content: str = data(answer)["content"]
    return content


def test_a_job_reads_itself_with_its_own_token_and_nothing_else(
    live_server: LiveServer, native: requests.Session, tmp_path: Path
) -> None:
    url, flag = live_server.url, tmp_path / "done"
    package = data(
        native.post(f"{url}{API}/packages/", json={"name": "pending", "command": ["true"]})
    )
    other = data(
        native.post(f"{url}{API}/jobs/", json={"package_id": package["id"], "run_at": FUTURE})
    )
    command = [sys.executable, "-c", JOB_CODE, other["id"], str(flag)]
    package = data(native.post(f"{url}{API}/packages/", json={"name": "self", "command": command}))
    job = data(native.post(f"{url}{API}/jobs/", json={"package_id": package["id"]}))
    deadline = time.monotonic() + 20
    while "token " not in (log := _job_log(native, url, job["id"])):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)

    # From inside, through JOBYARD_URL: its own job, log and events; no list, no other job.
    lines = _job_token_checks(log)
    secret = lines["token"]

    # From outside, with the same token, while the job runs.
    mine = f"{url}{API}/jobs/{job['id']}/"
    as_job = bearer(secret)

    def call(method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        target = path if path.startswith("http") else f"{url}{API}{path}"
        return requests.request(method, target, json=body, headers=as_job | headers, timeout=10)

    assert data(call("GET", mine))["status"] == "running"
    for path in (mine, mine + "log/", mine + "events/"):
        assert call("GET", path).status_code == OK, path
        assert requests.get(path, headers=basic("", secret), timeout=10).status_code == OK
        assert requests.get(path, params={"token": secret}, timeout=10).status_code == OK
    launch = {"package_id": package["id"], "run_at": FUTURE}
    forbidden = [
        ("GET", f"/jobs/{other['id']}/", None),
        ("GET", f"/jobs/{other['id']}/log/", None),
        ("GET", "/jobs/", None),
        ("GET", "/runs/", None),
        ("GET", "/packages/", None),
        ("GET", "/users/", None),
        ("GET", "/tokens/", None),
        ("GET", "/events/", None),
        ("POST", "/jobs/", launch),
        ("POST", f"/jobs/{other['id']}/cancel/", None),
        ("PATCH", f"/jobs/{job['id']}/", {"priority": 3}),
        ("DELETE", f"/jobs/{other['id']}/", None),
        ("POST", "/tokens/", {"name": "escape", "scopes": ["jobs:read"]}),
        ("PATCH", f"/users/{job['user_id']}/", {"password": "hijacked-password"}),
        ("POST", f"/jobs/{job['id']}/cancel/", None),  # it may read its job, not cancel it
    ]
    problems = []
    minted = None
    for method, path, body in forbidden:
        response = call(method, path, body)
        if response.status_code != FORBIDDEN:
            problems.append(f"{method} {path}: {response.status_code} {response.text[:150]}")
            if path == "/tokens/" and response.status_code == OK:
                minted = response.json()["data"]["token"]
    response = call("GET", mine, **{"Customer-Id": "1"})
    if response.status_code not in {OK, FORBIDDEN}:
        problems.append(f"own job with Customer-Id 1: {response.status_code}")
    still = native.get(f"{url}{API}/jobs/{other['id']}/", timeout=10).json()["data"]["status"]
    assert still == "pending", still

    # When the job ends, its token dies.
    flag.touch()
    deadline = time.monotonic() + 20
    while (found := data(native.get(mine, timeout=10)))["status"] not in TERMINAL:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    if found["status"] != "completed":
        problems.append(f"the job ended {found['status']}: {_job_log(native, url, job['id'])}")
    for path in (mine, mine + "log/", mine + "events/"):
        refused(call("GET", path), UNAUTHORIZED)
    if minted is not None:  # what the job's token minted outlives the job
        answer = requests.get(f"{url}{API}/jobs/", headers=bearer(minted), timeout=10)
        problems.append(f"a token minted by the job token lists all jobs: {answer.status_code}")
    assert not problems, "\n".join(problems)


def _new_tenant(native: requests.Session, url: str, name: str) -> str:
    answer = native.post(f"{url}{API}/tenants/", json={"name": name}, timeout=10)
    tenant_id: str = data(answer)["id"]
    return tenant_id


def test_the_token_of_a_job_launched_for_a_customer(
    live_server: LiveServer, native: requests.Session, tmp_path: Path
) -> None:
    """The system admin launches a job in another tenant (Customer-Id): the job's token reads
    that job, in that tenant, and nothing else."""
    url, flag = live_server.url, tmp_path / "done"
    flag.touch()  # the job ends as soon as it has checked
    acme = {"Customer-Id": _new_tenant(native, url, "acme")}
    home = data(native.post(f"{url}{API}/packages/", json={"name": "p", "command": ["true"]}))
    other = data(
        native.post(f"{url}{API}/jobs/", json={"package_id": home["id"], "run_at": FUTURE})
    )
    command = [sys.executable, "-c", JOB_CODE, other["id"], str(flag)]
    package = data(
        native.post(
            f"{url}{API}/packages/", json={"name": "self", "command": command}, headers=acme
        )
    )
    job = data(native.post(f"{url}{API}/jobs/", json={"package_id": package["id"]}, headers=acme))
    deadline = time.monotonic() + 20
    while (found := data(native.get(f"{url}{API}/jobs/{job['id']}/", headers=acme, timeout=10)))[
        "status"
    ] not in TERMINAL:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    answer = native.get(f"{url}{API}/jobs/{job['id']}/log/", headers=acme, timeout=10)
    log = data(answer)["content"]
    _job_token_checks(log)


def test_a_deleted_user_s_tokens_stop_working(client: TestClient) -> None:
    op_id = user(client, "op")
    secret = token(client, basic("op", PASSWORD), "jobs:read")["token"]
    assert me(client, bearer(secret)).status_code == OK
    assert client.delete(f"{API}/users/{op_id}/").status_code == NO_CONTENT
    refused(me(client, bearer(secret)), UNAUTHORIZED)
    refused(me(client, basic("op", PASSWORD)), UNAUTHORIZED)


# The audit trail --------------------------------------------------------------------------


def test_the_audit_trail(client: TestClient) -> None:
    op_id = user(client, "op")
    user(client, "viewer", role="viewer")
    as_op = basic("op", PASSWORD)
    admin_id = data(me(client, AUTH))["id"]
    package = data(client.post(f"{API}/packages/", json={"name": "p", "command": ["true"]}))
    launch = {"package_id": package["id"], "run_at": FUTURE}
    job = data(client.post(f"{API}/jobs/", json=launch, headers=as_op))
    data(client.post(f"{API}/jobs/{job['id']}/cancel/", headers=as_op))
    assert client.delete(f"{API}/jobs/{job['id']}/", headers=as_op).status_code == NO_CONTENT
    op_token = token(client, as_op, "jobs:read")
    assert client.delete(f"{API}/tokens/{op_token['id']}/", headers=as_op).status_code == NO_CONTENT
    made = data(client.post(f"{API}/users/", json={"login": "new", "role": "viewer"}))
    data(client.patch(f"{API}/users/{made['id']}/", json={"role": "operator"}))

    events = data(client.get(f"{API}/events/?limit=none"))
    seen = {(e["action"], e["user_id"], e["object_id"]) for e in events}
    expected = {
        ("job.launch", op_id, job["id"]),
        ("job.cancel", op_id, job["id"]),
        ("job.delete", op_id, job["id"]),
        ("token.create", op_id, op_token["id"]),
        ("token.revoke", op_id, op_token["id"]),
        ("user.create", admin_id, made["id"]),
        ("user.edit", admin_id, made["id"]),
    }
    assert expected <= seen, expected - seen
    for event in events:
        stamp(event["at"])
        assert event["customer_id"] == "1", event

    cancels = client.get(f"{API}/events/", params={"filter": "action=job.cancel"})
    assert [(e["action"], e["object_id"]) for e in data(cancels)] == [("job.cancel", job["id"])]
    assert cancels.json()["links"]["total"] == 1
    for auth in (basic("viewer", PASSWORD), as_op):
        refused(client.get(f"{API}/events/", headers=auth), FORBIDDEN, "admin")
