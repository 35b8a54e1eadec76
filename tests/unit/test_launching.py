"""Variables, argv and interfaces of a launch: precedence and no shell."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobyard.domain import launching, models
from jobyard.domain.models import (
    Config,
    Device,
    Interface,
    JobOptions,
    Package,
    PackageKind,
)
from jobyard.errors import ValidationFailed

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _config(name: str, testvars: dict[str, str], interfaces: tuple[Interface, ...] = ()) -> Config:
    return Config(1, name, "", testvars, interfaces, 1, NOW, NOW)


def _package(command: tuple[str, ...], kind: PackageKind = PackageKind.COMMAND) -> Package:
    return Package(
        id=1,
        name="p",
        description="",
        kind=kind,
        command=command,
        env={"WHO": "{who}"},
        timeout_seconds=None,
        max_attempts=1,
        retry_delay_seconds=0,
        concurrency_limit=None,
        config_id=None,
        device_id=None,
        positive_results=(),
        negative_results=None,
        tags=(),
        note="",
        user_id=1,
        created=NOW,
        updated=NOW,
    )


def test_each_source_overrides_the_one_before() -> None:
    device = Device(1, "dut", "", {"who": "device", "address": "10.0.0.1"}, 1, NOW, NOW)
    options = JobOptions(
        testvars=(models.Testvar("who", "testvar"), models.Testvar("level", "3")),
        extra_cli_args="-testvar level=9 --verbose",
    )

    variables, extra = launching.resolve_variables(
        builtins={"package_name": "p"},
        device=device,
        package_config=_config("base", {"who": "package config", "lan": "eth0"}),
        job_config=_config("job", {"lan": "eth1"}),
        options=options,
    )

    assert variables == {
        "package_name": "p",
        "who": "testvar",
        "address": "10.0.0.1",
        "lan": "eth1",
        "level": "9",
    }
    assert extra == ["--verbose"]


def test_a_delete_testvar_action_removes_the_variable() -> None:
    options = JobOptions(testvars=(models.Testvar("who", action="delete-testvar"),))
    variables, _ = launching.resolve_variables(
        builtins={},
        device=None,
        package_config=_config("c", {"who": "x"}),
        job_config=None,
        options=options,
    )
    assert "who" not in variables


def test_the_plan_keeps_each_value_in_one_argv_element() -> None:
    plan = launching.plan_launch(
        package=_package(("echo", "{who}")),
        variables={"who": "; rm -rf / $(id)"},
        extra_args=["a b", "c"],
        interface_config=None,
    )
    assert plan.argv == ("echo", "; rm -rf / $(id)", "a b", "c")
    assert plan.env == {"WHO": "; rm -rf / $(id)"}


def test_interfaces_are_rendered_and_blank_ones_dropped() -> None:
    config = _config(
        "c",
        {},
        (
            Interface("lan", "{lanInterface}"),
            Interface("wifi", "wifi0", is_wireless=True),
            Interface("spare", "{spare}"),
        ),
    )
    rendered = launching.render_interfaces(config, {"lanInterface": "eth2", "spare": ""})
    assert rendered == (Interface("lan", "eth2"), Interface("wifi", "wifi0", is_wireless=True))


def test_an_external_package_plans_no_command() -> None:
    plan = launching.plan_launch(
        package=_package((), PackageKind.EXTERNAL),
        variables={},
        extra_args=[],
        interface_config=None,
    )
    assert plan.argv == ()


def test_an_unknown_variable_is_refused_at_launch() -> None:
    with pytest.raises(ValidationFailed, match='unknown variable "nope"'):
        launching.plan_launch(
            package=_package(("echo", "{nope}")),
            variables={"who": "x"},
            extra_args=[],
            interface_config=None,
        )
