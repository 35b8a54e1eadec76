"""How a launch becomes something runnable: variables, argv, environment and interfaces.

Variables resolve from low to high precedence: built-ins, device attributes, the package's
config, the job's config, the job's testvars, then `-testvar name=value` in extra_cli_args.
Nothing here reaches a shell: every placeholder fills exactly one argv element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobyard.domain import arguments, templates
from jobyard.domain.models import Config, Device, Interface, JobOptions, Package, PackageKind
from jobyard.errors import ValidationFailed

DELETE_TESTVAR_ACTIONS = frozenset({"delete-testvar"})


@dataclass(frozen=True)
class LaunchPlan:
    """What a job will run, fixed at launch so that later package edits cannot change it."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    interfaces: tuple[Interface, ...]


@dataclass(frozen=True)
class ResolvedLaunch:
    """A launch's package, device and config as read, and the plan made of them."""

    package: Package
    device: Device | None
    config: Config | None
    plan: LaunchPlan


def resolve_variables(
    *,
    builtins: Mapping[str, str],
    device: Device | None,
    package_config: Config | None,
    job_config: Config | None,
    options: JobOptions,
) -> tuple[dict[str, str], list[str]]:
    """The job's variables and the extra CLI arguments left once `-testvar` pairs are taken."""
    variables = dict(builtins)
    if device is not None:
        variables.update(device.attributes)
    for config in (package_config, job_config):
        if config is not None:
            variables.update(config.testvars)
    for testvar in options.testvars or ():
        if testvar.action in DELETE_TESTVAR_ACTIONS:
            variables.pop(testvar.name, None)
        else:
            variables[testvar.name] = testvar.value
    cli_vars, extra_args = templates.testvars_from_cli_args(
        templates.split_cli_args(options.extra_cli_args)
    )
    variables.update(cli_vars)
    return variables, extra_args


def render_interfaces(config: Config | None, variables: Mapping[str, str]) -> tuple[Interface, ...]:
    """The config's interface templates filled in; blank ones are not used."""
    if config is None:
        return ()
    rendered: list[Interface] = []
    for template in config.interfaces:
        value = templates.render_text(template.value, variables).strip()
        if value and value not in {i.value for i in rendered}:
            rendered.append(Interface(template.name, value, template.is_wireless, template.is_ics))
    return tuple(rendered)


def plan_launch(
    *,
    package: Package,
    variables: Mapping[str, str],
    extra_args: Sequence[str],
    interface_config: Config | None,
) -> LaunchPlan:
    """Render the package's argv and env with the job's variables, and append the extra
    arguments the package allows (refused whole when one is not allowed)."""
    arguments.check_appended_args(extra_args, package.allowed_args, package=package.name)
    interfaces = render_interfaces(interface_config, variables)
    if package.kind is PackageKind.EXTERNAL:
        return LaunchPlan(argv=(), env={}, interfaces=interfaces)
    if not package.command:
        raise ValidationFailed(f"package {package.name!r} has no command to run")
    argv = templates.render_argv(package.command, variables) + list(extra_args)
    env = {name: templates.render_text(value, variables) for name, value in package.env.items()}
    return LaunchPlan(argv=tuple(argv), env=env, interfaces=interfaces)
