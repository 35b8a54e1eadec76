"""Who may do what: the permission matrix over roles, token scopes and tenants.

Two tenants, the system tenant 1 and "acme", each get an admin, an operator and a viewer with
passwords, tokens of one scope each (and an admin token without the admin scope), and a
device, a config, a package, a pending job and a finished job with its run. Every endpoint is
then called as every principal, on its own tenant's objects and on the other tenant's. The
expected answer follows from three rules of the issue:

- a principal holds its role's scopes, intersected with its token's (`admin` stands for all);
- without the scope an endpoint needs, the answer is 403 and the error names that scope;
- another tenant's objects do not exist: 404, never in a list, never counted in a total;
- what a package runs (a `command` package) is defined by system admins only: an admin of the
  system tenant with the admin scope (the default; tests/api/test_catalog.py turns on the
  setting that lets customer admins do it too).

Mismatches are collected and reported together at the end of each test, so one run shows the
whole picture (and hundreds of cells cost one fixture set-up, not hundreds).
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

API = "/api/v1"
FUTURE = "9999-01-01T00:00:00Z"
PASSWORD = "long-enough-pw"
SYSTEM = 1
MISSING = "999999"  # an id no object has
ADMIN = {"Authorization": "Bearer test-admin-token"}
ROLES = ("viewer", "operator", "admin")
ROLE_SCOPES = {
    "viewer": frozenset({"jobs:read", "packages:read"}),
    "operator": frozenset({"jobs:read", "jobs:write", "packages:read"}),
    "admin": frozenset({"jobs:read", "jobs:write", "packages:read", "packages:write", "admin"}),
}
ALL_SCOPES = ROLE_SCOPES["admin"]
NO_ADMIN_SCOPE = ALL_SCOPES - {"admin"}
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}
OK, NO_CONTENT, BAD, UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 200, 204, 400, 401, 403, 404


# Principals and the world they live in ----------------------------------------------------


def basic(login: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def in_tenant(tenant: int) -> dict[str, str]:
    """Headers for the system admin (the bootstrap token) acting in `tenant`."""
    return ADMIN | ({} if tenant == SYSTEM else {"Customer-Id": str(tenant)})


def answering(client: TestClient) -> TestClient:
    """The same running app, without default credentials, answering 500s instead of raising
    them (so that a crash is one more collected mismatch, not the end of the matrix)."""
    return TestClient(client.app, raise_server_exceptions=False)


def effective(role: str, token_scopes: Iterable[str] | None) -> frozenset[str]:
    """What the issue says a principal may do: its role's scopes ∩ its token's."""
    if token_scopes is None:
        return ROLE_SCOPES[role]
    wanted = frozenset(token_scopes)
    return ROLE_SCOPES[role] & (ALL_SCOPES if "admin" in wanted else wanted)


@dataclass(frozen=True)
class Who:
    """A principal: a user by password, or one of that user's tokens."""

    label: str
    tenant: int
    user_id: str
    role: str
    scopes: frozenset[str]
    headers: dict[str, str]
    by_password: bool = False

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def defines_commands(self) -> bool:
        return self.tenant == SYSTEM and self.role == "admin" and self.has("admin")


@dataclass
class Side:
    """One tenant's users and objects."""

    id: int
    prefix: str
    users: dict[str, str] = field(default_factory=dict)  # role -> user id
    user_ids: set[str] = field(default_factory=set)
    device: str = ""
    config: str = ""
    package: str = ""
    pending: str = ""  # a job that waits for run_at 9999
    done: str = ""  # a job that ran to its end
    run: str = ""  # the run of `done`

    def own(self, resource: str) -> set[str]:
        return {
            "jobs": {self.pending, self.done},
            "runs": {self.run},
            "packages": {self.package},
            "devices": {self.device},
            "configs": {self.config},
        }[resource]

    def fill(self, path: str) -> str:
        return path.format(
            job=self.done,
            pending=self.pending,
            run=self.run,
            package=self.package,
            device=self.device,
            config=self.config,
            viewer=self.users["viewer"],
        )


@dataclass
class World:
    client: TestClient
    sides: dict[int, Side]
    principals: list[Who]

    @property
    def system(self) -> Side:
        return self.sides[SYSTEM]

    @property
    def acme(self) -> Side:
        return next(s for t, s in self.sides.items() if t != SYSTEM)

    def other(self, tenant: int) -> Side:
        return next(s for t, s in self.sides.items() if t != tenant)

    def who(self, label: str) -> Who:
        return next(p for p in self.principals if p.label == label)

    def admin_data(self, method: str, path: str, tenant: int, body: Any = None) -> Any:
        """A call by the system admin in `tenant` that must succeed: set-up and inspection."""
        response = self.client.request(method, API + path, json=body, headers=in_tenant(tenant))
        assert response.status_code == OK, (method, path, response.text)
        return response.json()["data"]

    def exists(self, resource: str, object_id: str, tenant: int) -> bool:
        response = self.client.get(f"{API}/{resource}/{object_id}/", headers=in_tenant(tenant))
        assert response.status_code in {OK, NOT_FOUND}, response.text
        return response.status_code == OK


def _wait_done(world: World, job_id: str, tenant: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while world.admin_data("GET", f"/jobs/{job_id}/", tenant)["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"job {job_id} did not end"
        time.sleep(0.02)


def _build_side(world: World, tenant: int, prefix: str) -> Side:
    side = Side(id=tenant, prefix=prefix)
    for role in ROLES:
        body = {"login": f"{prefix}-{role}", "password": PASSWORD, "role": role}
        user = world.admin_data("POST", "/users/", tenant, body)
        assert user["customer_id"] == str(tenant), user
        side.users[role] = user["id"]
    side.user_ids = set(side.users.values())
    side.device = world.admin_data("POST", "/devices/", tenant, {"name": f"{prefix}-dut"})["id"]
    side.config = world.admin_data("POST", "/configs/", tenant, {"name": f"{prefix}-cfg"})["id"]
    package = {
        "name": f"{prefix}-package",
        "command": ["true"],
        "device_id": side.device,
        "config_id": side.config,
    }
    side.package = world.admin_data("POST", "/packages/", tenant, package)["id"]
    launch = {"package_id": side.package, "run_at": FUTURE}
    side.pending = world.admin_data("POST", "/jobs/", tenant, launch)["id"]
    side.done = world.admin_data("POST", "/jobs/", tenant, {"package_id": side.package})["id"]
    return side


def _principals(world: World, side: Side) -> list[Who]:
    """Each user by password, and by one token per scope its role allows."""
    found = []
    for role in ROLES:
        login, user_id = f"{side.prefix}-{role}", side.users[role]
        by_password = basic(login, PASSWORD)
        found.append(
            Who(
                f"{side.prefix}/{role}/password",
                side.id,
                user_id,
                role,
                effective(role, None),
                by_password,
                by_password=True,
            )
        )
        scope_sets = [[s] for s in sorted(ROLE_SCOPES[role])]
        if role == "admin":
            scope_sets.append(sorted(NO_ADMIN_SCOPE))
        for scopes in scope_sets:
            name = "+".join(scopes) if len(scopes) == 1 else "no-admin"
            response = world.client.post(
                f"{API}/tokens/", json={"name": name, "scopes": scopes}, headers=by_password
            )
            assert response.status_code == OK, (login, scopes, response.text)
            secret = response.json()["data"]["token"]
            found.append(
                Who(
                    f"{side.prefix}/{role}/token:{name}",
                    side.id,
                    user_id,
                    role,
                    effective(role, scopes),
                    bearer(secret),
                )
            )
    return found


def build_world(client: TestClient) -> World:
    world = World(answering(client), {}, [])
    response = create_tenant(world.client, "acme")
    assert response.status_code == OK, response.text
    acme = int(response.json()["data"]["id"])
    assert acme != SYSTEM
    me = world.admin_data("GET", "/users/me/", SYSTEM)
    world.sides = {
        SYSTEM: _build_side(world, SYSTEM, "sys"),
        acme: _build_side(world, acme, "acme"),
    }
    world.system.user_ids.add(me["id"])
    for side in world.sides.values():
        _wait_done(world, side.done, side.id)
        runs = world.admin_data("GET", f"/runs/?filter=job_id={side.done}", side.id)
        assert len(runs) == 1, runs
        side.run = runs[0]["id"]
    world.principals = [
        Who(
            "sys/bootstrap-token",
            SYSTEM,
            me["id"],
            "admin",
            ALL_SCOPES,
            ADMIN,
        )
    ]
    for side in world.sides.values():
        world.principals += _principals(world, side)
    return world


# Collecting mismatches --------------------------------------------------------------------


class Checks:
    """Calls that must answer as expected; every mismatch is kept and reported at the end."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.problems: list[str] = []
        self.calls = 0

    def call(
        self,
        who: Who | None,
        method: str,
        path: str,
        expect: set[int],
        *,
        body: Any = None,
        names: str | None = None,
        headers: dict[str, str] | None = None,
        note: str = "",
    ) -> httpx.Response:
        """Call as `who`; a 403 must name `names` (the scope or role that is missing)."""
        sent = dict(who.headers if who else {}) | (headers or {})
        response = self.client.request(method, API + path, json=body, headers=sent)
        self.calls += 1
        status = response.status_code
        label = f"{who.label if who else '-'} {method} {path} {note}".rstrip()
        if status not in expect:
            self.fail(f"{label}: {status}, expected {sorted(expect)}: {response.text[:200]}")
        elif status == FORBIDDEN and names and names not in response.json().get("error", ""):
            self.fail(f"{label}: 403 does not name {names!r}: {response.json().get('error')!r}")
        elif status == UNAUTHORIZED and "www-authenticate" not in response.headers:
            self.fail(f"{label}: 401 without WWW-Authenticate")
        return response

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.fail(problem)

    def report(self) -> None:
        shown = "\n".join(self.problems[:150])
        assert not self.problems, f"{len(self.problems)} of {self.calls} calls went wrong:\n{shown}"


def expected(who: Who, scope: str, *, own: bool, success: int) -> set[int]:
    if not who.has(scope):
        return {FORBIDDEN}
    return {success} if own else {NOT_FOUND}


def sides_for(world: World, who: Who) -> list[tuple[Side, bool]]:
    """The principal's own tenant, then the other one."""
    return [(world.sides[who.tenant], True), (world.other(who.tenant), False)]


# Reading ----------------------------------------------------------------------------------

ITEM_READS = [  # (path, scope)
    ("/jobs/{job}/", "jobs:read"),
    ("/jobs/{job}/log/", "jobs:read"),
    ("/jobs/{job}/events/", "jobs:read"),
    ("/runs/{run}/", "jobs:read"),
    ("/packages/{package}/", "packages:read"),
    ("/devices/{device}/", "packages:read"),
    ("/configs/{config}/", "packages:read"),
]
LISTS = [  # (resource, scope)
    ("jobs", "jobs:read"),
    ("runs", "jobs:read"),
    ("packages", "packages:read"),
    ("devices", "packages:read"),
    ("configs", "packages:read"),
]


def _check_list(checks: Checks, world: World, who: Who, resource: str, scope: str) -> None:
    response = checks.call(
        who, "GET", f"/{resource}/?limit=none", {OK} if who.has(scope) else {FORBIDDEN}, names=scope
    )
    if response.status_code != OK:
        return
    own = world.sides[who.tenant].own(resource)
    foreign = world.other(who.tenant).own(resource)
    ids = {item["id"] for item in response.json()["data"]}
    total = response.json()["links"]["total"]
    checks.check(not ids & foreign, f"{who.label} lists foreign {resource} {ids & foreign}")
    checks.check(ids == own, f"{who.label} lists {resource} {sorted(ids)}, expected {sorted(own)}")
    checks.check(total == len(own), f"{who.label}: {resource} total {total}, expected {len(own)}")
    # Asking for a foreign object by id finds nothing either.
    one = next(iter(foreign))
    response = checks.call(who, "GET", f"/{resource}/?filter=id={one}", {OK})
    if response.status_code == OK:
        body = response.json()
        checks.check(
            body["data"] == [] and body["links"]["total"] == 0,
            f"{who.label}: {resource} filtered on foreign id {one} gives {body}",
        )


def test_reading_objects_of_each_tenant(client: TestClient) -> None:
    world = build_world(client)
    checks = Checks(world.client)
    for who in world.principals:
        for resource, scope in LISTS:
            _check_list(checks, world, who, resource, scope)
        for (side, own), (path, scope) in itertools.product(sides_for(world, who), ITEM_READS):
            want = expected(who, scope, own=own, success=OK)
            checks.call(who, "GET", side.fill(path), want, names=scope, note=side.prefix)
        for side, own in sides_for(world, who):
            checks.call(
                who,
                "POST",
                "/jobs/?process=interfaces",
                expected(who, "jobs:read", own=own, success=OK),
                body={"package_id": side.package},
                names="jobs:read",
                note=side.prefix,
            )
        if who.has("jobs:read"):  # a foreign object answers exactly like a missing one
            checks.call(who, "GET", f"/jobs/{MISSING}/", {NOT_FOUND})
    checks.report()


# Writing ----------------------------------------------------------------------------------


class Spares:
    """Throw-away objects for calls that may consume them (delete, cancel); an object a call
    must not have touched is checked and used again."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.pool: dict[tuple[str, int], list[str]] = {}
        self.names = itertools.count()

    def take(self, kind: str, side: Side) -> str:
        pool = self.pool.setdefault((kind, side.id), [])
        if pool:
            return pool.pop()
        name = f"spare-{kind}-{next(self.names)}"
        if kind == "jobs":
            body: dict[str, Any] = {"package_id": side.package, "run_at": FUTURE}
        elif kind == "packages":
            body = {"name": name, "command": ["true"]}
        else:
            body = {"name": name}
        created: str = self.world.admin_data("POST", f"/{kind}/", side.id, body)["id"]
        return created

    def untouched(self, checks: Checks, who: Who, kind: str, side: Side, object_id: str) -> None:
        """After a refused call: the object must still be there (a job still pending)."""
        response = self.world.client.get(f"{API}/{kind}/{object_id}/", headers=in_tenant(side.id))
        alive = response.status_code == OK and (
            kind != "jobs" or response.json()["data"]["status"] == "pending"
        )
        if alive:
            self.pool[(kind, side.id)].append(object_id)
        else:
            checks.fail(f"{who.label}: a refused call changed {kind} {object_id} of {side.prefix}")


@dataclass(frozen=True)
class Write:
    """A call on one object of one side: `spare` names the kind of throw-away object it
    consumes (None: it works on the side's own fixed objects)."""

    method: str
    path: str
    scope: str
    success: int
    body: Callable[[Side, str], Any] = lambda side, target: None
    spare: str | None = None


def _launch(side: Side, target: str) -> Any:
    return {"package_id": side.package, "run_at": FUTURE}


WRITES = [
    Write("POST", "/jobs/", "jobs:write", OK, _launch),
    Write("POST", "/jobs/?bulk=launch", "jobs:write", OK, lambda s, t: {"jobs": [_launch(s, t)]}),
    Write("PATCH", "/jobs/{pending}/", "jobs:write", OK, lambda s, t: {"priority": 5}),
    Write("DELETE", "/jobs/{target}/", "jobs:write", NO_CONTENT, spare="jobs"),
    Write("POST", "/jobs/{target}/cancel/", "jobs:write", OK, spare="jobs"),
    Write("PATCH", "/packages/{package}/", "packages:write", OK, lambda s, t: {"note": "n"}),
    Write("PATCH", "/devices/{device}/", "packages:write", OK, lambda s, t: {"description": "d"}),
    Write("PATCH", "/configs/{config}/", "packages:write", OK, lambda s, t: {"description": "d"}),
    Write("DELETE", "/packages/{target}/", "packages:write", NO_CONTENT, spare="packages"),
    Write("DELETE", "/devices/{target}/", "packages:write", NO_CONTENT, spare="devices"),
    Write("DELETE", "/configs/{target}/", "packages:write", NO_CONTENT, spare="configs"),
]


def _write(checks: Checks, spares: Spares, who: Who, write: Write, side: Side, own: bool) -> None:
    target = spares.take(write.spare, side) if write.spare else ""
    path = side.fill(write.path.replace("{target}", target))
    want = expected(who, write.scope, own=own, success=write.success)
    response = checks.call(
        who,
        write.method,
        path,
        want,
        body=write.body(side, target),
        names=write.scope,
        note=side.prefix,
    )
    if write.spare and response.status_code not in {OK, NO_CONTENT}:
        spares.untouched(checks, who, write.spare, side, target)


def _bulk_delete(checks: Checks, spares: Spares, who: Who, side: Side, own: bool) -> None:
    """Bulk delete naming a foreign job may ignore it or say 404, but must never delete it."""
    target = spares.take("jobs", side)
    if not who.has("jobs:write"):
        want = {FORBIDDEN}
    else:
        want = {NO_CONTENT} if own else {NO_CONTENT, NOT_FOUND}
    body = {"jobs": [{"id": target}]}
    checks.call(
        who, "POST", "/jobs/?bulk=delete", want, body=body, names="jobs:write", note=side.prefix
    )
    if own and who.has("jobs:write"):
        checks.check(
            not spares.world.exists("jobs", target, side.id),
            f"{who.label}: bulk delete left its own job {target}",
        )
    else:
        spares.untouched(checks, who, "jobs", side, target)


REFERENCES = [  # (method, path, body with a reference to fill in); see _foreign_references
    ("POST", "/jobs/", lambda own, ref: {"package_id": ref["package"], "run_at": FUTURE}),
    ("POST", "/jobs/", lambda own, ref: {"package_id": own.package, "device_id": ref["device"]}),
    ("POST", "/jobs/", lambda own, ref: {"package_id": own.package, "config_id": ref["config"]}),
    ("POST", "/jobs/?process=interfaces", lambda own, ref: {"package_id": ref["package"]}),
    ("PATCH", "/jobs/{pending}/", lambda own, ref: {"package_id": ref["package"]}),
    ("PATCH", "/jobs/{pending}/", lambda own, ref: {"device_id": ref["device"]}),
    ("PATCH", "/jobs/{pending}/", lambda own, ref: {"config_id": ref["config"]}),
    # External packages: every admin may create them (command ones are for system admins).
    (
        "POST",
        "/packages/",
        lambda own, ref: {"name": "r", "kind": "external", "device_id": ref["device"]},
    ),
    (
        "POST",
        "/packages/",
        lambda own, ref: {"name": "r", "kind": "external", "config_id": ref["config"]},
    ),
    ("PATCH", "/packages/{package}/", lambda own, ref: {"device_id": ref["device"]}),
    ("PATCH", "/packages/{package}/", lambda own, ref: {"config_id": ref["config"]}),
]


def _foreign_references(checks: Checks, world: World) -> None:
    """A body naming another tenant's package, device or config is answered exactly as one
    naming an id that does not exist: refused (404 or 400), never a success, never a 403."""
    missing = {"package": MISSING, "device": MISSING, "config": MISSING}
    for side in world.sides.values():
        admin = world.who(f"{side.prefix}/admin/password")
        other = world.other(side.id)
        foreign = {"package": other.package, "device": other.device, "config": other.config}
        for method, path, body in REFERENCES:
            nothing = checks.call(
                admin, method, side.fill(path), {NOT_FOUND, BAD}, body=body(side, missing)
            )
            checks.call(
                admin,
                method,
                side.fill(path),
                {nothing.status_code},
                body=body(side, foreign),
                note="(foreign reference)",
            )


def test_writing_objects_of_each_tenant(client: TestClient) -> None:
    world = build_world(client)
    checks, spares = Checks(world.client), Spares(world)
    _foreign_references(checks, world)
    names = itertools.count()
    for who in world.principals:
        for write, (side, own) in itertools.product(WRITES, sides_for(world, who)):
            _write(checks, spares, who, write, side, own)
        for side, own in sides_for(world, who):
            _bulk_delete(checks, spares, who, side, own)
        creations: list[tuple[str, dict[str, Any], set[int], str]] = [
            (kind, {}, {OK} if who.has("packages:write") else {FORBIDDEN}, "packages:write")
            for kind in ("packages", "devices", "configs")
        ]
        if who.has("packages:write"):  # what runs: only a system admin defines it
            want_command = {OK} if who.defines_commands else {FORBIDDEN}
            creations.append(("packages", {"command": ["true"]}, want_command, "system admin"))
        for kind, fields, want, missing in creations:
            body: dict[str, Any] = {"name": f"new-{next(names)}"} | fields
            if kind == "packages" and not fields:
                body["kind"] = "external"
            response = checks.call(who, "POST", f"/{kind}/", want, body=body, names=missing)
            if response.status_code == OK:  # created in the principal's own tenant
                new_id = response.json()["data"]["id"]
                checks.check(
                    world.exists(kind, new_id, who.tenant)
                    and not world.exists(kind, new_id, world.other(who.tenant).id),
                    f"{who.label}: new {kind} {new_id} is not (only) in tenant {who.tenant}",
                )
    # A bulk launch by package filter launches the tenant's own packages only.
    for side in world.sides.values():
        operator = world.who(f"{side.prefix}/operator/password")
        response = checks.call(
            operator,
            "POST",
            "/jobs/?bulk=launch&all=true",
            {OK},
            body={"fields": {"run_at": FUTURE}},
        )
        if response.status_code == OK:
            launched = {job["package_id"] for job in response.json()["data"]}
            foreign = {
                p["id"]
                for p in world.admin_data("GET", "/packages/?limit=none", world.other(side.id).id)
            }
            checks.check(not launched & foreign, f"{operator.label} launched foreign packages")
    # No refused cancel reached the fixed pending jobs.
    for side in world.sides.values():
        job = world.admin_data("GET", f"/jobs/{side.pending}/", side.id)
        checks.check(job["status"] == "pending", f"job {side.pending} is {job['status']}")
    checks.report()


# Accounts: users, tokens and the audit trail ----------------------------------------------


def _user_cells(checks: Checks, world: World, who: Who, logins: Iterator[int]) -> None:
    response = checks.call(
        who, "GET", "/users/?limit=none", {OK} if who.has("admin") else {FORBIDDEN}, names="admin"
    )
    if response.status_code == OK:
        tenants = {u["customer_id"] for u in response.json()["data"]}
        ids = {u["id"] for u in response.json()["data"]}
        checks.check(tenants == {str(who.tenant)}, f"{who.label} lists users of {tenants}")
        checks.check(
            world.sides[who.tenant].users["viewer"] in ids
            and not ids & world.other(who.tenant).user_ids,
            f"{who.label} lists users {sorted(ids)}",
        )
    for side, own in sides_for(world, who):
        target = side.users["viewer"]
        want = {OK} if target == who.user_id else expected(who, "admin", own=own, success=OK)
        checks.call(
            who, "GET", side.fill("/users/{viewer}/"), want, names="admin", note=side.prefix
        )
        # Changing a role is for admins, one's own role included.
        body = {"role": "viewer"}
        want = expected(who, "admin", own=own, success=OK)
        path = side.fill("/users/{viewer}/")
        checks.call(who, "PATCH", path, want, body=body, names="admin", note=side.prefix)
        # Deleting a user (a throw-away one).
        login = f"doomed-{next(logins)}"
        doomed = world.admin_data("POST", "/users/", side.id, {"login": login, "role": "viewer"})
        want = expected(who, "admin", own=own, success=NO_CONTENT)
        response = checks.call(
            who, "DELETE", f"/users/{doomed['id']}/", want, names="admin", note=side.prefix
        )
        if response.status_code != NO_CONTENT:
            checks.check(
                world.exists("users", doomed["id"], side.id),
                f"{who.label}: a refused delete removed user {login}",
            )
    body = {"login": f"made-{next(logins)}", "role": "viewer"}
    want = {OK} if who.has("admin") else {FORBIDDEN}
    response = checks.call(who, "POST", "/users/", want, body=body, names="admin")
    if response.status_code == OK:
        made = response.json()["data"]
        checks.check(made["customer_id"] == str(who.tenant), f"{who.label} made {made}")
        world.sides[who.tenant].user_ids.add(made["id"])


def _token_cells(checks: Checks, world: World, who: Who) -> None:
    _token_listing(checks, world, who)
    _token_creation(checks, world, who)
    _token_revocation(checks, world, who)


def _token_listing(checks: Checks, world: World, who: Who) -> None:
    # Listing: an admin sees the tenant's tokens, anyone else only their own; never a secret.
    # Whether a token without jobs:read may list its own tokens is not settled by the issue.
    want = {OK} if who.has("admin") or who.has("jobs:read") or who.by_password else {OK, FORBIDDEN}
    response = checks.call(who, "GET", "/tokens/?limit=none", want)
    if response.status_code == OK:
        items = response.json()["data"]
        owners = {t["user_id"] for t in items}
        allowed = world.sides[who.tenant].user_ids if who.has("admin") else {who.user_id}
        checks.check(owners <= allowed, f"{who.label} lists tokens of users {owners - allowed}")
        checks.check(
            all("token" not in t for t in items), f"{who.label}: a token list shows a secret"
        )
        if who.has("admin"):
            checks.check(len(owners) > 1, f"{who.label} sees only its own tokens: {owners}")


def _token_creation(checks: Checks, world: World, who: Who) -> None:
    # Creating: never more than the creator holds.
    for scope in ("jobs:read", "packages:write", "admin"):
        want = {OK} if who.has(scope) else {FORBIDDEN}
        body = {"name": "minted", "scopes": [scope]}
        checks.call(who, "POST", "/tokens/", want, body=body, names=scope)
    # A token for someone else: admins only, and only for users of their tenant.
    for side, own in sides_for(world, who):
        viewer = side.users["viewer"]
        body = {"name": "for", "scopes": ["jobs:read"], "user_id": viewer}
        if viewer == who.user_id:
            want = {OK} if who.has("jobs:read") else {FORBIDDEN}
        elif not own:
            want = {NOT_FOUND} if who.has("admin") else {FORBIDDEN, NOT_FOUND}
        else:
            want = {OK} if who.has("admin") else {FORBIDDEN}
        response = checks.call(who, "POST", "/tokens/", want, body=body, note=side.prefix)
        if response.status_code == OK:
            made = response.json()["data"]
            checks.check(made["user_id"] == viewer, f"{who.label} made a token for {made}")


def _token_revocation(checks: Checks, world: World, who: Who) -> None:
    # Revoking: one's own token, or as an admin any of the tenant's; foreign tokens are 404.
    for side, own in sides_for(world, who):
        viewer = side.users["viewer"]
        minted = world.admin_data(
            "POST",
            "/tokens/",
            side.id,
            {"name": "victim", "scopes": ["jobs:read"], "user_id": viewer},
        )["id"]
        if not own:
            want = {NOT_FOUND} if who.has("admin") else {FORBIDDEN, NOT_FOUND}
        elif viewer == who.user_id:
            want = (
                {NO_CONTENT} if who.has("jobs:read") or who.by_password else {NO_CONTENT, FORBIDDEN}
            )
        else:
            want = {NO_CONTENT} if who.has("admin") else {FORBIDDEN}
        response = checks.call(who, "DELETE", f"/tokens/{minted}/", want, note=side.prefix)
        if response.status_code != NO_CONTENT:  # still usable by its owner's admin view
            listed = world.admin_data("GET", f"/tokens/?filter=id={minted}", side.id)
            checks.check(len(listed) == 1, f"{who.label}: refused revoke of {minted} took effect")


def test_accounts_endpoints_for_each_principal(client: TestClient) -> None:
    world = build_world(client)
    checks = Checks(world.client)
    logins = itertools.count()
    for who in world.principals:
        _user_cells(checks, world, who, logins)
        _token_cells(checks, world, who)
        want = {OK} if who.has("admin") else {FORBIDDEN}
        response = checks.call(who, "GET", "/events/?limit=none", want, names="admin")
        if response.status_code == OK:
            tenants = {e["customer_id"] for e in response.json()["data"]}
            checks.check(tenants <= {str(who.tenant)}, f"{who.label} sees events of {tenants}")
            checks.check(bool(tenants), f"{who.label} sees no events at all")
    checks.report()


# Customer-Id --------------------------------------------------------------------------------


def test_customer_id(client: TestClient) -> None:
    world = build_world(client)
    checks = Checks(world.client)
    system, acme = world.system, world.acme
    to_acme = {"Customer-Id": str(acme.id)}
    to_system = {"Customer-Id": str(SYSTEM)}

    # The system admin (bootstrap token, password, admin-scoped token) acts in acme.
    for label in ("sys/bootstrap-token", "sys/admin/password", "sys/admin/token:admin"):
        admin = world.who(label)
        for resource in ("jobs", "runs", "packages", "devices", "configs"):
            response = checks.call(admin, "GET", f"/{resource}/?limit=none", {OK}, headers=to_acme)
            if response.status_code == OK:
                ids = {item["id"] for item in response.json()["data"]}
                total = response.json()["links"]["total"]
                checks.check(
                    ids == acme.own(resource) and total == len(ids),
                    f"{label} in acme lists {resource} {sorted(ids)} (total {total})",
                )
        checks.call(admin, "GET", acme.fill("/jobs/{job}/"), {OK}, headers=to_acme)
        checks.call(admin, "GET", system.fill("/jobs/{job}/"), {NOT_FOUND}, headers=to_acme)
        checks.call(admin, "GET", acme.fill("/jobs/{job}/"), {NOT_FOUND}, headers=to_system)
        checks.call(admin, "GET", system.fill("/jobs/{job}/"), {OK}, headers=to_system)
        response = checks.call(admin, "GET", "/users/?limit=none", {OK}, headers=to_acme)
        if response.status_code == OK:
            ids = {u["id"] for u in response.json()["data"]}
            checks.check(ids == acme.user_ids, f"{label} in acme lists users {sorted(ids)}")
        response = checks.call(admin, "GET", "/events/?limit=none", {OK}, headers=to_acme)
        if response.status_code == OK:
            tenants = {e["customer_id"] for e in response.json()["data"]}
            checks.check(tenants == {str(acme.id)}, f"{label} in acme sees events of {tenants}")
        # An unknown customer is 404, whatever the endpoint.
        for path in ("/jobs/", acme.fill("/jobs/{job}/"), "/users/"):
            checks.call(admin, "GET", path, {NOT_FOUND}, headers={"Customer-Id": "424242"})
        checks.call(admin, "GET", "/jobs/", {BAD}, headers={"Customer-Id": "acme"})

    # What the system admin creates in acme belongs to acme.
    made = checks.call(
        world.who("sys/admin/password"),
        "POST",
        "/packages/",
        {OK},
        body={"name": "for-acme", "command": ["true"]},
        headers=to_acme,
    )
    if made.status_code == OK:
        package_id = made.json()["data"]["id"]
        checks.call(world.who("acme/viewer/password"), "GET", f"/packages/{package_id}/", {OK})
        checks.call(
            world.who("sys/viewer/password"), "GET", f"/packages/{package_id}/", {NOT_FOUND}
        )

    # Nobody else may choose a tenant: 403 on lists and on objects alike.
    refused = [p for p in world.principals if p.tenant == SYSTEM and not p.has("admin")]
    refused += [p for p in world.principals if p.tenant == acme.id]
    for who in refused:
        foreign = to_system if who.tenant == acme.id else to_acme
        own = to_acme if who.tenant == acme.id else to_system
        target = world.sides[SYSTEM if who.tenant == acme.id else acme.id]
        for path in ("/jobs/", target.fill("/jobs/{job}/"), "/packages/", "/users/"):
            checks.call(who, "GET", path, {FORBIDDEN}, headers=foreign)
        checks.call(who, "GET", "/system/hostname/", {FORBIDDEN}, headers=foreign)
        # Naming one's own tenant is fine.
        want = {OK} if who.has("jobs:read") else {FORBIDDEN}
        checks.call(who, "GET", "/jobs/", want, headers=own, names="jobs:read")

    # Bad credentials stay 401 whatever tenant they name.
    for headers in (to_acme, to_system, {"Customer-Id": "424242"}):
        checks.call(None, "GET", "/jobs/", {UNAUTHORIZED}, headers=bearer("nope") | headers)
    checks.report()


# Without credentials ------------------------------------------------------------------------

EVERY_ROUTE = [
    ("GET", "/jobs/"),
    ("POST", "/jobs/"),
    ("POST", "/jobs/?bulk=launch"),
    ("POST", "/jobs/?bulk=delete"),
    ("POST", "/jobs/?process=interfaces"),
    ("GET", "/jobs/1/"),
    ("PATCH", "/jobs/1/"),
    ("DELETE", "/jobs/1/"),
    ("POST", "/jobs/1/cancel/"),
    ("GET", "/jobs/1/log/"),
    ("GET", "/jobs/1/events/"),
    ("GET", "/runs/"),
    ("GET", "/runs/1/"),
    *[
        (method, path.format(kind))
        for kind in ("packages", "devices", "configs")
        for method, path in (
            ("GET", "/{}/"),
            ("POST", "/{}/"),
            ("GET", "/{}/1/"),
            ("PATCH", "/{}/1/"),
            ("DELETE", "/{}/1/"),
        )
    ],
    ("GET", "/users/"),
    ("POST", "/users/"),
    ("GET", "/users/me/"),
    ("GET", "/users/1/"),
    ("PATCH", "/users/1/"),
    ("DELETE", "/users/2/"),
    ("GET", "/tokens/"),
    ("POST", "/tokens/"),
    ("DELETE", "/tokens/1/"),
    ("GET", "/tenants/"),
    ("POST", "/tenants/"),
    ("GET", "/events/"),
    ("GET", "/system/hostname/"),
    ("GET", "/system/version/"),
    ("GET", "/webhooks/"),
    ("POST", "/webhooks/"),
    ("GET", "/webhooks/1/"),
    ("PATCH", "/webhooks/1/"),
    ("DELETE", "/webhooks/1/"),
    ("GET", "/webhooks/1/deliveries/"),
    ("POST", "/webhooks/1/deliveries/1/redeliver/"),
    ("POST", "/webhooks/1/test/"),
]
BAD_CREDENTIALS = {
    "none": {"Authorization": ""},
    "unknown bearer": bearer("jy_not-a-token"),
    "empty bearer": {"Authorization": "Bearer "},
    "bad basic": basic("admin", "wrong-password"),
    "basic without colon": {"Authorization": "Basic " + base64.b64encode(b"admin").decode()},
    "garbage basic": {"Authorization": "Basic !!!"},
    "unknown scheme": {"Authorization": "Token test-admin-token"},
}


def test_every_route_needs_credentials(client: TestClient) -> None:
    """401 with WWW-Authenticate, before any validation of the body or the id."""
    checks = Checks(answering(client))
    for number, ((method, path), (name, given)) in enumerate(
        itertools.product(EVERY_ROUTE, BAD_CREDENTIALS.items())
    ):
        headers = given
        if name == "bad basic":
            if method != "GET":
                continue  # each costs a password hash: keep them few
            headers = basic(f"nobody-{number}", "wrong-password")  # five would lock one login
        body = {} if method in {"POST", "PATCH"} else None
        checks.call(None, method, path, {UNAUTHORIZED}, body=body, headers=headers, note=name)
    checks.call(
        None, "GET", "/jobs/?token=jy_not-a-token", {UNAUTHORIZED}, headers={"Authorization": ""}
    )
    # The client fixture really is authenticated: the same routes answer otherwise with it.
    checks.call(None, "GET", "/jobs/", {OK}, headers=bearer("test-admin-token"))
    checks.report()


# Tenants ----------------------------------------------------------------------------------


def create_tenant(raw: TestClient, name: str) -> httpx.Response:
    response = raw.post(f"{API}/tenants/", json={"name": name}, headers=ADMIN)
    assert response.status_code == OK, response.text
    return response


def test_tenants_are_created_by_the_system_admin(client: TestClient) -> None:
    """On a fresh database: tenant 1 exists from the start, and new ones get new ids."""
    raw = answering(client)
    listed = raw.get(f"{API}/tenants/", headers=ADMIN)
    assert listed.status_code == OK, listed.text
    assert [t["id"] for t in listed.json()["data"]] == [str(SYSTEM)]
    first = raw.post(f"{API}/tenants/", headers=ADMIN, json={"name": "acme"})
    assert first.status_code == OK, first.text
    second = raw.post(f"{API}/tenants/", headers=ADMIN, json={"name": "globex"})
    assert second.status_code == OK, second.text
    ids = [first.json()["data"]["id"], second.json()["data"]["id"]]
    assert all(i.isdigit() for i in ids)
    assert len({str(SYSTEM), *ids}) == 3
    listed = raw.get(f"{API}/tenants/", headers=ADMIN).json()["data"]
    assert {t["id"]: t["name"] for t in listed} == {
        str(SYSTEM): "system",
        ids[0]: "acme",
        ids[1]: "globex",
    }
    # A duplicate name is refused as a conflict, not a crash.
    assert raw.post(f"{API}/tenants/", headers=ADMIN, json={"name": "acme"}).status_code == 409


def test_only_the_system_admin_manages_tenants(client: TestClient) -> None:
    acme = create_tenant(answering(client), "acme")
    acme_id = acme.json()["data"]["id"]
    for tenant in (SYSTEM, int(acme_id)):
        user = {"login": f"boss-{tenant}", "password": PASSWORD, "role": "admin"}
        made = client.post(f"{API}/users/", json=user, headers=in_tenant(tenant))
        assert made.status_code == OK, made.text
        as_boss = basic(user["login"], PASSWORD)
        no_admin = client.post(
            f"{API}/tokens/", json={"name": "t", "scopes": sorted(NO_ADMIN_SCOPE)}, headers=as_boss
        ).json()["data"]["token"]
        for headers in (as_boss, bearer(no_admin)):
            refused = client.post(f"{API}/tenants/", json={"name": f"x{tenant}"}, headers=headers)
            listing = client.get(f"{API}/tenants/", headers=headers)
            if tenant == SYSTEM and headers is as_boss:  # a second admin of tenant 1 may
                assert refused.status_code == OK, refused.text
                assert listing.status_code == OK, listing.text
            else:
                assert refused.status_code == FORBIDDEN, refused.text
                assert listing.status_code == FORBIDDEN, listing.text
