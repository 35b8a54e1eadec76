"""Each run's own directory: ready and empty for its child before the spawn, emptied after
its end.

A worker hands an emptied directory to its next run of the same uid rather than making a
new one: on ext4 a mkdir and rmdir per job costs the spawner about 70 µs of journal work,
a quarter of a `true` job's throughput. Before each use the directory is checked and
reset (a directory, not a link; its owner; mode 0700; no ACL a job may have set to let
another uid in), so a run never sees what an earlier one left or allowed.

The spawner that makes and empties them runs as root when jobs run as a user of their own,
so a job's chmod cannot keep its leftovers from being removed; as the job's own user, the
removal makes each directory it cannot enter its own again (`unlock`) and tries once more.
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
    from jobyard.worker.spawning import ProcessSpec

logger = logging.getLogger(__name__)

RUN_DIR_MODE = 0o700  # the job's alone: its siblings cannot look in
RUNS_ROOT_MODE = 0o711  # a job reaches its own directory, but cannot list the others
ACL_ATTRIBUTES = ("system.posix_acl_access", "system.posix_acl_default")


def make(spec: ProcessSpec) -> None:
    """Make the child's own directory, or make ready the emptied one of an earlier run."""
    path = spec.cwd or ""
    try:
        os.mkdir(path, RUN_DIR_MODE)
    except FileExistsError:
        if _reset(spec, path):
            return
        remove_tree(path)
        os.mkdir(path, RUN_DIR_MODE)
    try:
        os.chmod(path, RUN_DIR_MODE)  # whatever the umask
        if spec.user is not None:
            os.chown(path, spec.user.uid, spec.user.gid)
    except BaseException:
        os.rmdir(path)
        raise


def _reset(spec: ProcessSpec, path: str) -> bool:
    """Whether `path` is a directory the child may have as its own, once its mode is 0700
    again and any ACL is gone; False when it must be made anew."""
    found = os.lstat(path)
    owner = os.geteuid() if spec.user is None else spec.user.uid
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != owner:
        return False
    if stat.S_IMODE(found.st_mode) != RUN_DIR_MODE:
        os.chmod(path, RUN_DIR_MODE)
    for acl in ACL_ATTRIBUTES:
        with contextlib.suppress(OSError):  # none set (ENODATA), or no ACLs on this mount
            os.removexattr(path, acl, follow_symlinks=False)
    return True


def remove(spec: ProcessSpec) -> None:
    """Empty the child's own directory for a later run (it may never have been made); what
    cannot be emptied is removed whole."""
    if spec.own_cwd and spec.cwd is not None:
        empty(spec.cwd)


def empty(path: str) -> None:
    try:
        with os.scandir(path) as entries:  # most runs leave nothing: no walk, no journal
            names = [entry.name for entry in entries]
    except FileNotFoundError:
        return
    except OSError:
        remove_tree(path)
        return
    for name in names:
        inside = os.path.join(path, name)
        try:
            if os.path.isdir(inside) and not os.path.islink(inside):
                shutil.rmtree(inside)
            else:
                os.unlink(inside)
        except OSError:
            remove_tree(path)  # a job locked something away: the next run gets a new one
            return


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
