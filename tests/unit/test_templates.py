"""Argv/text templates, extra_cli_args splitting and -testvar extraction.

`testvars_from_cli_args` is reached through its module: imported bare, pytest would collect it.
"""

from __future__ import annotations

import pytest

from jobyard.domain import templates
from jobyard.domain.templates import render_argv, render_text, split_cli_args, template_variables
from jobyard.errors import ValidationFailed

VARIABLES = {
    "lanInterface": "eth1",
    "wan_if": "eth0",
    "dut-name": "router 1",
    "config": "/configs/a b.conf",
    "empty": "",
    "evil": "; rm -rf / && $(reboot) `id` 'x' \"y\" | cat > /etc/passwd",
}


# --- render_argv --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (["cdrouter-cli", "-config", "{config}"], ["cdrouter-cli", "-config", "/configs/a b.conf"]),
        (["--lan={lanInterface}", "--wan={wan_if}"], ["--lan=eth1", "--wan=eth0"]),
        (["{dut-name}"], ["router 1"]),
        (["{lanInterface}{wan_if}"], ["eth1eth0"]),
        (["pre-{empty}-post"], ["pre--post"]),
        (["{empty}"], [""]),
        (["{{literal}}"], ["{literal}"]),
        (["{{{wan_if}}}"], ["{eth0}"]),
        (["a}}b{{c"], ["a}b{c"]),
        (["no placeholders"], ["no placeholders"]),
        ([], []),
        (["run", "{evil}"], ["run", VARIABLES["evil"]]),
    ],
)
def test_render_argv(template: list[str], expected: list[str]) -> None:
    assert render_argv(template, VARIABLES) == expected


def test_values_stay_one_element_whatever_they_hold() -> None:
    variables = {"x": "; rm -rf /", "y": "a b\tc\nd", "z": "$(touch /tmp/pwned)"}
    argv = render_argv(["echo", "{x}", "{y}", "--z={z}"], variables)
    assert argv == ["echo", "; rm -rf /", "a b\tc\nd", "--z=$(touch /tmp/pwned)"]
    assert len(argv) == 4


def test_values_are_not_rendered_again() -> None:
    """A value that looks like a placeholder is literal: no second pass, no recursion."""
    assert render_argv(["{a}"], {"a": "{b}", "b": "secret"}) == ["{b}"]
    assert render_text("{a}", {"a": "{{"}) == "{{"


@pytest.mark.parametrize("name", ["__class__", "nope", "LANINTERFACE", "_"])
def test_unknown_variable(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        render_argv(["x", f"{{{name}}}"], VARIABLES)
    assert caught.value.message == f'unknown variable "{name}" in command'


@pytest.mark.parametrize(
    "element",
    [
        "{0}",
        "{}",
        "{1abc}",
        "{-x}",
        "{a.b}",
        "{a.__dict__}",
        "{config.__class__}",
        "{a[0]}",
        "{config!r}",
        "{config:>10}",
        "{ config}",
        "{config }",
        "{a b}",
        "{a/b}",
        "{é}",
    ],
)
def test_invalid_placeholders(element: str) -> None:
    with pytest.raises(ValidationFailed, match=r"^invalid placeholder") as caught:
        render_argv([element], VARIABLES)
    assert element in caught.value.message


@pytest.mark.parametrize("element", ["{", "}", "a{b", "a}b", "{config", "config}", "{a{b}}", "{{{"])
def test_unbalanced_braces(element: str) -> None:
    with pytest.raises(ValidationFailed, match="unbalanced") as caught:
        render_argv([element], VARIABLES)
    assert f'"{element}"' in caught.value.message


def test_nul_in_a_value_is_rejected() -> None:
    with pytest.raises(ValidationFailed, match="NUL"):
        render_argv(["{x}"], {"x": "a\0b"})


def test_a_bare_string_is_not_an_argv_template() -> None:
    with pytest.raises(TypeError):
        render_argv("{config}", VARIABLES)
    with pytest.raises(TypeError):
        template_variables("abc")


# --- template_variables and render_text ---------------------------------------------------


def test_template_variables() -> None:
    template = ["{a}", "x-{b}-{a}", "{{c}}", "plain", "{dut-name}"]
    assert template_variables(template) == {"a", "b", "dut-name"}
    assert template_variables([]) == set()


@pytest.mark.parametrize("template", [["{a.b}"], ["ok", "{"], ["{0}"]])
def test_template_variables_validates(template: list[str]) -> None:
    with pytest.raises(ValidationFailed):
        template_variables(template)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{lanInterface}", "eth1"),
        ("{lanInterface}.100", "eth1.100"),
        ("  {empty}  ", "    "),
        ("{{x}}", "{x}"),
        ("x{evil}", "x" + VARIABLES["evil"]),
    ],
)
def test_render_text(template: str, expected: str) -> None:
    assert render_text(template, VARIABLES) == expected


def test_render_text_errors_name_the_place() -> None:
    with pytest.raises(ValidationFailed) as caught:
        render_text("{missing}", VARIABLES, where="interface lan")
    assert caught.value.message == 'unknown variable "missing" in interface lan'
    with pytest.raises(ValidationFailed, match=r'^invalid placeholder "\{a!s\}" in template'):
        render_text("{a!s}", {"a": "1"})


# --- split_cli_args -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("-a -b", ["-a", "-b"]),
        ('-testvar "name=a b"', ["-testvar", "name=a b"]),
        ("-x 'single quoted'", ["-x", "single quoted"]),
        ("a\\ b", ["a b"]),
        ("# not a comment", ["#", "not", "a", "comment"]),
        ("x;y", ["x;y"]),
        ("$(id) `id` $HOME", ["$(id)", "`id`", "$HOME"]),
        ("a\n\tb", ["a", "b"]),
        ('""', [""]),
    ],
)
def test_split_cli_args(text: str, expected: list[str]) -> None:
    assert split_cli_args(text) == expected


@pytest.mark.parametrize("text", ['-a "unterminated', "'x", "trailing\\"])
def test_split_cli_args_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed, match=r"^invalid extra_cli_args: ") as caught:
        split_cli_args(text)
    assert caught.value.field == "extra_cli_args"


def test_split_cli_args_rejects_nul() -> None:
    with pytest.raises(ValidationFailed, match="NUL"):
        split_cli_args("a\0b")


# --- testvars_from_cli_args ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "variables", "remaining"),
    [
        ([], {}, []),
        (["-v", "--trace"], {}, ["-v", "--trace"]),
        (["-testvar", "wanMode=DHCP"], {"wanMode": "DHCP"}, []),
        (["--testvar", "a=1", "-x"], {"a": "1"}, ["-x"]),
        (["-testvar=a=b=c"], {"a": "b=c"}, []),
        (["--testvar=a="], {"a": ""}, []),
        (["-x", "-testvar", "a=1", "y", "-testvar", "a=2"], {"a": "2"}, ["-x", "y"]),
        (["-testvar", "name=a b; rm -rf /"], {"name": "a b; rm -rf /"}, []),
        (["-testvars", "a=1"], {}, ["-testvars", "a=1"]),
        (["testvar", "a=1"], {}, ["testvar", "a=1"]),
        (["-TESTVAR", "a=1"], {}, ["-TESTVAR", "a=1"]),
    ],
)
def test_testvars_from_cli_args(
    args: list[str], variables: dict[str, str], remaining: list[str]
) -> None:
    assert templates.testvars_from_cli_args(args) == (variables, remaining)


@pytest.mark.parametrize(
    "args",
    [
        ["-testvar"],
        ["-x", "--testvar"],
        ["-testvar", "novalue"],
        ["-testvar", "=value"],
        ["-testvar="],
        ["--testvar=name"],
        ["-testvar", "-testvar", "a=1"],
    ],
)
def test_testvars_from_cli_args_rejects(args: list[str]) -> None:
    with pytest.raises(ValidationFailed, match=r"^invalid extra_cli_args: .*name=value"):
        templates.testvars_from_cli_args(args)


def test_split_then_extract() -> None:
    args = split_cli_args("-testvar 'lanIp=10.0.0.1' -trace --testvar=wanMode=static -q")
    assert templates.testvars_from_cli_args(args) == (
        {"lanIp": "10.0.0.1", "wanMode": "static"},
        ["-trace", "-q"],
    )
