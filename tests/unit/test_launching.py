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


def _package(
    command: tuple[str, ...],
    kind: PackageKind = PackageKind.COMMAND,
    allowed_args: tuple[str, ...] | None = None,
) -> Package:
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
        allowed_args=allowed_args,
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
        package=_package(("echo", "{who}"), allowed_args=("*",)),
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


def _plan(package: Package, options: JobOptions, config: Config | None = None) -> tuple[str, ...]:
    """The argv a launch with these options gets, through the same steps as a real launch."""
    variables, extra = launching.resolve_variables(
        builtins={}, device=None, package_config=config, job_config=None, options=options
    )
    return launching.plan_launch(
        package=package, variables=variables, extra_args=extra, interface_config=None
    ).argv


FIND = ("find", "/srv/data", "-name", "{pattern}")
PATTERN = _config("c", {"pattern": "*.txt", "who": "w"})  # the package env uses {who}


def test_the_probe_launch_is_refused_and_names_the_argument() -> None:
    probe = JobOptions(extra_cli_args="-exec sh -c 'id > /tmp/x' ;")
    with pytest.raises(ValidationFailed, match='"-exec" is not allowed') as refused:
        _plan(_package(FIND), probe, PATTERN)
    assert refused.value.field == "extra_cli_args"
    assert "allows no appended arguments" in refused.value.message


@pytest.mark.parametrize("kind", list(PackageKind))
def test_appended_arguments_are_refused_for_every_kind_unless_allowed(kind: PackageKind) -> None:
    options = JobOptions(extra_cli_args="--verbose")
    with pytest.raises(ValidationFailed, match='"--verbose" is not allowed'):
        _plan(_package(("true",), kind), options, PATTERN)
    allowed = _package(("true",), kind, allowed_args=("--verbose",))
    assert _plan(allowed, options, PATTERN) == (
        ("true", "--verbose") if kind.value == "command" else ()
    )


def test_allowed_forms_are_appended_as_given() -> None:
    package = _package(FIND, allowed_args=("-print", "-maxdepth {1,2}", "--level=*"))
    options = JobOptions(extra_cli_args="-maxdepth 2 -print '--level=a b' -testvar pattern=x")
    assert _plan(package, options, PATTERN) == (
        "find",
        "/srv/data",
        "-name",
        "x",
        "-maxdepth",
        "2",
        "-print",
        "--level=a b",
    )


# Testvars only ever fill placeholders: whatever their names and values, they never add,
# remove or split an argv element.


@pytest.mark.parametrize(
    "extra_cli_args",
    [
        "-testvar '-exec=sh -c id ;'",  # a testvar named like a flag
        "-testvar=--delete=1",
        "-testvar 'pattern=*.txt -exec sh -c id ;'",  # spaces and a flag in the value
        """-testvar "pattern=a' -o -exec \\"sh\\" ;" """,  # quotes in the value
        "--testvar pattern=-delete",
    ],
)
def test_a_cli_testvar_never_becomes_an_argument(extra_cli_args: str) -> None:
    options = JobOptions(extra_cli_args=extra_cli_args)
    argv = _plan(_package(FIND), options, PATTERN)
    assert len(argv) == len(FIND)
    assert argv[:3] == FIND[:3]
    variables, extra = launching.resolve_variables(
        builtins={}, device=None, package_config=PATTERN, job_config=None, options=options
    )
    assert extra == []
    assert argv[3] == variables["pattern"]


def test_a_job_testvar_never_becomes_an_argument() -> None:
    testvars = (
        models.Testvar("-exec", "sh -c id ;"),
        models.Testvar("--", "-delete"),
        models.Testvar("pattern", "a b -exec 'c' \"d\" ;"),
    )
    argv = _plan(_package(FIND), JobOptions(testvars=testvars), PATTERN)
    assert argv == (*FIND[:3], "a b -exec 'c' \"d\" ;")


def test_a_testvar_cannot_smuggle_arguments_past_the_check() -> None:
    # Unquoted, the rest of the text is appended arguments, and those are checked.
    options = JobOptions(extra_cli_args="-testvar pattern=x -exec sh -c id ;")
    with pytest.raises(ValidationFailed, match='"-exec" is not allowed'):
        _plan(_package(FIND), options, PATTERN)
    # A flag's separate value cannot be a -testvar: it is taken as a variable first.
    package = _package(FIND, allowed_args=("-maxdepth *",))
    options = JobOptions(extra_cli_args="-maxdepth -testvar pattern=x")
    with pytest.raises(ValidationFailed, match='"-maxdepth" needs a value after it'):
        _plan(package, options, PATTERN)
