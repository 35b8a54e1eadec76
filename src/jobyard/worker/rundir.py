"""Each run's own directory: made for its child just before the spawn, removed after its end.

The spawner that makes and removes them runs as root when jobs run as a user of their own,
so a job's chmod cannot keep its leftovers from being removed; as the job's own user, the
removal makes each directory it cannot enter its own again (`_unlock`) and tries once more.
Standard library only: the spawner process imports it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobyard.worker.supervisor import ProcessSpec

logger = logging.getLogger(__name__)

RUN_DIR_MODE = 0o700  # the job's alone: its siblings cannot look in
RUNS_ROOT_MODE = 0o711  # a job reaches its own directory, but cannot list the others


def make(spec: ProcessSpec) -> None:
    """Make the child's own directory (it must not exist: the name is new each time)."""
    path = spec.cwd or ""
    os.mkdir(path, RUN_DIR_MODE)
    try:
        os.chmod(path, RUN_DIR_MODE)  # whatever the umask
        if spec.user is not None:
            os.chown(path, spec.user.uid, spec.user.gid)
    except BaseException:
        os.rmdir(path)
        raise


def remove(spec: ProcessSpec) -> None:
    """Remove the child's own directory and everything in it (it may never have been made)."""
    if spec.own_cwd and spec.cwd is not None:
        remove_tree(spec.cwd)


def remove_tree(path: str) -> None:
    def unlock(_function: object, failed: str, _exc: object) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed)
            else:
                os.unlink(failed)

    try:
        shutil.rmtree(path, onerror=unlock)
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning("could not remove a run's directory %s: %s", path, error)


def prepare_root(root: str) -> None:
    """Make the root of the runs' directories, or check the one there: a directory of this
    process's user, 0711 (a path in a shared temp directory may have been made by anyone)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(root, RUNS_ROOT_MODE)
    found = os.lstat(root)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise PermissionError(
            f"{root} must be a directory of this process's user (uid {os.geteuid()}), "
            "not a link or another user's: remove it, or set JOBYARD_RUNS_DIR elsewhere"
        )
    if stat.S_IMODE(found.st_mode) != RUNS_ROOT_MODE:
        os.chmod(root, RUNS_ROOT_MODE)
