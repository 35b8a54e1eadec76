"""A package's switches for the optional sandbox (`JOBYARD_SANDBOX=bwrap`): `network`
(false: the job has no network) and `writable_paths` (absolute paths the job may write,
besides its own directory). Without a sandbox they have no effect."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from jobyard.errors import ValidationFailed

MAX_WRITABLE_PATHS = 64
MAX_PATH_LENGTH = 4096
KEYS = ("network", "writable_paths")


def checked_switches(value: Mapping[str, Any]) -> dict[str, Any]:
    """The switches as stored, or `ValidationFailed` naming what is wrong."""
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ValidationFailed(
            f"unknown sandbox switches {unknown}: only {', '.join(KEYS)}", field="sandbox"
        )
    switches: dict[str, Any] = {}
    if value.get("network") is not None:
        if not isinstance(value["network"], bool):
            raise ValidationFailed("sandbox.network must be true or false", field="sandbox")
        switches["network"] = value["network"]
    if value.get("writable_paths") is not None:
        switches["writable_paths"] = _writable_paths(value["writable_paths"])
    return switches


def _writable_paths(paths: object) -> list[str]:
    if not isinstance(paths, list) or len(paths) > MAX_WRITABLE_PATHS:
        raise ValidationFailed(
            f"sandbox.writable_paths must be a list of at most {MAX_WRITABLE_PATHS} paths",
            field="sandbox",
        )
    for path in paths:
        if not isinstance(path, str) or not _plain_absolute(path):
            raise ValidationFailed(
                f"sandbox.writable_paths: {path!r} is not a plain absolute path (no '..', "
                "'.', '//', NUL or trailing slash; not / itself)",
                field="sandbox",
            )
    return list(paths)


def _plain_absolute(path: str) -> bool:
    return (
        0 < len(path) <= MAX_PATH_LENGTH
        and path.startswith("/")
        and path != "/"
        and "\x00" not in path
        and posixpath.normpath(path) == path
        and ".." not in path.split("/")
    )
