"""Who may do what: roles, token scopes and tenants, as pure rules.

A request acts as a principal. What it may do is its role's scopes intersected with its
token's scopes (a password login carries every scope of its role). Objects of another tenant
do not exist for it: services answer 404 for them, never 403.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jobyard.errors import Forbidden, ValidationFailed

SYSTEM_TENANT_ID = 1


class Scope(enum.StrEnum):
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    PACKAGES_READ = "packages:read"
    PACKAGES_WRITE = "packages:write"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.JOBS_READ, Scope.PACKAGES_READ}),
    Role.OPERATOR: frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE, Scope.PACKAGES_READ}),
    Role.ADMIN: ALL_SCOPES,
}

JOB_TOKEN_SCOPES = frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE})


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; `admin` stands for every scope."""
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValidationFailed(f"unknown scope {name!r}: expected one of {known}") from None
    return ALL_SCOPES if Scope.ADMIN in scopes else frozenset(scopes)


def parse_role(name: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        raise ValidationFailed(
            f"unknown role {name!r}: expected viewer, operator or admin"
        ) from None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, and for which tenant."""

    user_id: int
    login: str
    role: Role
    home_tenant_id: int
    tenant_id: int  # the tenant acted in: the home one, or one a system admin chose
    scopes: frozenset[Scope]  # already the role's scopes ∩ the token's
    token_id: int | None = None
    job_id: int | None = None  # set for a job's own token: it may act on that job only

    @property
    def is_system_admin(self) -> bool:
        return (
            self.home_tenant_id == SYSTEM_TENANT_ID
            and self.role is Role.ADMIN
            and Scope.ADMIN in self.scopes
        )


def effective_scopes(role: Role, token_scopes: frozenset[Scope] | None) -> frozenset[Scope]:
    """What a login (no token) or a token of a user with `role` may do: never more than the role."""
    allowed = ROLE_SCOPES[role]
    return allowed if token_scopes is None else allowed & token_scopes


def require_system_admin(principal: Principal, what: str) -> None:
    if not principal.is_system_admin:
        raise Forbidden(f"only an admin of the system tenant may read {what}")


def require_person(principal: Principal) -> None:
    """Refuse a job's own token: beyond its job (`require_on_job`) it may do nothing, not
    even read who launched it or what the server is."""
    if principal.job_id is not None:
        raise Forbidden(f"this is the token of job {principal.job_id}: it may act on that job only")


def require_own_job_route(principal: Principal, job_id: int | None) -> None:
    """A job's token reaches only operations on its own job (`job_id`, from the path; None
    for an operation on no one job): anything else is refused before any of the request
    is read, so that it learns nothing from how a body or a parameter would be judged."""
    if principal.job_id is not None and job_id != principal.job_id:
        raise Forbidden(f"this is the token of job {principal.job_id}: it may act on that job only")


def require(principal: Principal, scope: Scope) -> None:
    """Refuse unless the principal holds `scope`, naming what is missing; job tokens are
    refused here: they act only through `require_on_job`."""
    require_person(principal)
    _require_scope(principal, scope)


def require_on_job(
    principal: Principal, scope: Scope, job_id: int, *, reporting: bool = False
) -> None:
    """Refuse unless the principal may use `scope` on this job. A job's own token may read
    its job and, when `reporting` (append a result, set the outcome), write to it: nothing
    else, not even cancel it."""
    if principal.job_id is not None:
        if principal.job_id != job_id:
            raise Forbidden(
                f"this is the token of job {principal.job_id}: it may act on that job only"
            )
        if scope is not Scope.JOBS_READ and not reporting:
            raise Forbidden("a job's token may only read its job and report results on it")
    _require_scope(principal, scope)


def _require_scope(principal: Principal, scope: Scope) -> None:
    if scope in principal.scopes:
        return
    if scope in ROLE_SCOPES[principal.role]:
        raise Forbidden(f"missing scope {scope}: this token was not given it")
    raise Forbidden(f"missing scope {scope}: the {principal.role} role does not include it")


def require_run_definer(
    principal: Principal, changed: Sequence[str], *, customer_admins_may: bool
) -> None:
    """Refuse a change to what a package runs (`changed` names the fields it sets) unless the
    principal is a system admin, or the deployment lets every admin define commands for
    their customer. A customer admin changes packages' other fields freely."""
    if not changed or principal.is_system_admin or customer_admins_may:
        return
    fields = ", ".join(changed)
    raise Forbidden(
        f"missing system admin: only an admin of customer {SYSTEM_TENANT_ID} with the admin"
        f" scope defines what a package runs (this request sets its {fields}); a deployment"
        " started with JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS=true lets customer admins do so"
    )


def choose_tenant(principal: Principal, requested: int | None) -> Principal:
    """Act in the requested tenant: only a system admin may choose another one."""
    if requested is None or requested == principal.home_tenant_id:
        return principal
    if not principal.is_system_admin:
        raise Forbidden(f"only an admin of the system tenant may act for customer {requested}")
    return Principal(
        user_id=principal.user_id,
        login=principal.login,
        role=principal.role,
        home_tenant_id=principal.home_tenant_id,
        tenant_id=requested,
        scopes=principal.scopes,
        token_id=principal.token_id,
        job_id=principal.job_id,
    )
