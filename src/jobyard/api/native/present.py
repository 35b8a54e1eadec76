"""Domain records rendered in the CDRouter conventions, with one rule for what is not set
(docs/api.md, "Conventions"): every field is always there; a value not set yet is null; a
list is [] when empty; where the `cdrouter` client reads a field and refuses null, the unset
value is CDRouter's own ("0" for an id, "" for a string)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobyard.api.render import ident, ref, rfc3339
from jobyard.domain.models import (
    Config,
    Device,
    Interface,
    Job,
    JobEvent,
    JobOptions,
    JobResult,
    Package,
    Run,
)
from jobyard.domain.schedules import Fire, Schedule
from jobyard.domain.webhooks import Attempt, Delivery, Webhook
from jobyard.repeats import map_shared
from jobyard.services.runs import LogSlice


def interface(i: Interface) -> dict[str, Any]:
    return {"name": i.name, "value": i.value, "is_wireless": i.is_wireless, "is_ics": i.is_ics}


def options(o: JobOptions) -> dict[str, Any]:
    return {
        "tags": list(o.tags) if o.tags is not None else [],
        "skip_tests": list(o.skip_tests) if o.skip_tests is not None else [],
        "begin_at": o.begin_at,
        "end_at": o.end_at,
        "testvars": []
        if o.testvars is None
        else [
            {
                "group": t.group,
                "name": t.name,
                "value": t.value,
                "default": "",
                "isdefault": False,
                "line": 0,
                "action": t.action,
            }
            for t in o.testvars
        ],
        "extra_cli_args": o.extra_cli_args,
    }


def jobs(found: Sequence[Job]) -> list[dict[str, Any]]:
    """Many jobs; one that holds the very values of a job before it but its id is rendered
    as that one's copy, with its id (a bulk launch's jobs mostly are such copies)."""
    rendered = map_shared(job, found, key=_values_but_id)
    for index, (j, data) in enumerate(zip(found, rendered, strict=True)):
        if data["id"] != str(j.id):
            rendered[index] = data | {"id": str(j.id)}  # the nested values stay shared
    return rendered


def _values_but_id(one: Job) -> tuple[int, ...]:
    """The identities of a job's values but its id: equal values would not do ({"k": 1.0}
    == {"k": 1} in Python). The jobs rendered keep their values alive meanwhile."""
    return tuple(id(value) for name, value in one.__dict__.items() if name != "id")


def job(j: Job) -> dict[str, Any]:
    ics = [i.value for i in j.interfaces if i.is_ics]
    data: dict[str, Any] = {
        "id": str(j.id),
        "active": j.active,
        "status": j.status.value,
        "options": options(j.options),
        "package_id": ident(j.package_id),
        "package_name": j.package_name,
        # What it runs with, given at launch or inherited from its package, as its names say.
        "device_id": ident(j.target_device_id),
        "device_name": j.device_name,
        "config_id": ident(j.target_config_id),
        "config_name": j.config_name,
        "result_id": None if j.current_run_id is None else str(j.current_run_id),
        "user_id": ident(j.user_id),
        "created": rfc3339(j.created),
        "updated": rfc3339(j.updated),
        "automatic": j.automatic,
        "run_at": rfc3339(j.run_at),
        "interfaces": [interface(i) for i in j.interfaces],
        "interface_names": list(j.interface_names),
        "uses_wireless": any(i.is_wireless for i in j.interfaces),
        "uses_ics": bool(ics),
        "ics_interface_name": ics[0] if ics else None,
        "kind": j.kind.value,
        "priority": j.priority,
        "attempts": j.attempts,
        "cancel_requested": j.cancel_requested,
        "context": dict(j.context),
        # Null until known (the client ignores these fields, so null cannot upset it).
        "started": _time(j.started),
        "finished": _time(j.finished),
        "exit_code": j.exit_code,
        "outcome": {
            "status": j.outcome.status.value if j.outcome else None,
            "result": j.outcome.result if j.outcome else None,
        },
    }
    return data


def _time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def result(r: JobResult) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "job_id": str(r.job_id),
        "payload": dict(r.payload),
        "by": ref(r.user_id),
        "at": rfc3339(r.at),
    }


def package(p: Package) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "description": p.description,
        "kind": p.kind.value,
        "command": list(p.command),
        "env": dict(p.env),
        "timeout": p.timeout_seconds or 0,  # 0: none (a value, as a filter sees it)
        "max_attempts": p.max_attempts,
        "retry_delay": p.retry_delay_seconds,
        "rerun_lost": p.rerun_lost,
        "retry_backoff": p.retry_backoff,
        "retry_delay_max": p.retry_delay_max_seconds or 0,  # 0: no cap
        "retry_jitter": p.retry_jitter,
        "keep_days": p.keep_days,
        "keep_last": p.keep_last,
        "output_days": p.output_days,
        "concurrency": p.concurrency_limit or 0,  # 0: no limit
        "config_id": ident(p.config_id),
        "device_id": ident(p.device_id),
        "positive_results": list(p.positive_results),
        # Null is a value here, not an unset list: no negative end at all ([] allows any).
        "negative_results": None if p.negative_results is None else list(p.negative_results),
        "tags": list(p.tags),
        "note": p.note,
        "sandbox": dict(p.sandbox),
        "allowed_args": list(p.allowed_args or ()),
        "user_id": ident(p.user_id),
        "created": rfc3339(p.created),
        "updated": rfc3339(p.updated),
        # CDRouter package fields the client expects, with their neutral values.
        "locked": False,
        "test_count": "0",
        "testlist": [],
        "extra_cli_args": "",
        "agent_id": "0",
        "use_as_testlist": False,
    }


def schedule(s: Schedule) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "name": s.name,
        "description": s.description,
        "package_id": ident(s.package_id),
        "device_id": ident(s.device_id),
        "config_id": ident(s.config_id),
        "options": options(s.options),
        "context": dict(s.context),
        "priority": s.priority,
        "cron": s.timing.cron,
        "interval": s.timing.interval_seconds,
        "timezone": s.timing.timezone,
        "misfire": s.misfire.value,
        "skip_if_running": s.skip_if_running,
        "paused": s.paused,
        "next_run": _time(s.next_run),
        "last_fire_time": _time(s.last_fire_time),
        "last_job_id": ref(s.last_job_id),
        "user_id": ident(s.user_id),
        "created": rfc3339(s.created),
        "updated": rfc3339(s.updated),
    }


def fire(f: Fire) -> dict[str, Any]:
    return {
        "fire_time": rfc3339(f.fire_time),
        "outcome": f.outcome.value,
        "job_id": ref(f.job_id),
        "job_status": f.job_status,
        "note": f.note,
        "at": rfc3339(f.at),
    }


def webhook(w: Webhook) -> dict[str, Any]:
    return {
        "id": str(w.id),
        "url": w.url,
        "description": w.description or None,
        "package_id": ref(w.package_id),
        "events": [e.value for e in w.events],
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "consecutive_failures": w.consecutive_failures,
        "secret_hint": w.secret_hint,
        "user_id": ident(w.user_id),
        "created": rfc3339(w.created),
        "updated": rfc3339(w.updated),
    }


def webhook_attempt(a: Attempt) -> dict[str, Any]:
    return {
        "at": rfc3339(a.at),
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
    }


def webhook_delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "webhook_id": str(d.webhook_id),
        "event": d.event.value,
        "job_id": ref(d.job_id),
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt": _time(d.next_attempt),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created": rfc3339(d.created),
        "updated": rfc3339(d.updated),
        "delivered": _time(d.delivered),
        "payload": d.body(),
        "history": [webhook_attempt(a) for a in d.history],
    }


def device(d: Device) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "name": d.name,
        "description": d.description,
        "attributes": dict(d.attributes),
        "user_id": ident(d.user_id),
        "created": rfc3339(d.created),
        "updated": rfc3339(d.updated),
    }


def config(c: Config) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": c.name,
        "description": c.description,
        "testvars": dict(c.testvars),
        "interfaces": [interface(i) for i in c.interfaces],
        "user_id": ident(c.user_id),
        "created": rfc3339(c.created),
        "updated": rfc3339(c.updated),
    }


def run(r: Run) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "job_id": str(r.job_id),
        "attempt": r.attempt,
        "run_key": r.run_key,
        "status": r.status.value,
        "worker": r.worker,
        "process_id": r.process_id or None,  # 0 until the worker records it
        "started": rfc3339(r.started),
        "spawned": _time(r.spawned),
        "finished": _time(r.finished),
        "exit_code": r.exit_code,
        "signal": r.signal,
        "output_bytes": r.output_bytes,
        "truncated": r.truncated,
    }


def event(e: JobEvent) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "job_id": str(e.job_id),
        "from": e.from_status.value if e.from_status else None,
        "to": e.to_status.value,
        "at": rfc3339(e.at),
        "user_id": ref(e.user_id),
        "reason": e.reason,
    }


def log(s: LogSlice) -> dict[str, Any]:
    return {
        "job_id": str(s.job_id),
        "run_id": ref(s.run.id if s.run else None),
        "attempt": s.run.attempt if s.run else None,
        "offset": s.offset,
        "next_offset": s.next_offset,
        "complete": s.complete,
        "truncated": bool(s.run and s.run.truncated),
        "content": s.content.decode("utf-8", errors="replace"),
    }
