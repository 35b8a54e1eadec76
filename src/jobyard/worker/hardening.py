"""What the server's own processes do at start so that a job cannot look into them.

Standard library only: the spawner process imports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PRIVATE_UMASK = 0o077  # the database, its WAL and any key file: the server's alone


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def make_non_dumpable() -> None:
    """Make this process non-dumpable: its /proc/<pid>/environ, mem, fd and the like become
    root's, so a job running as the same user cannot read them, nor ptrace it. (An exec
    makes a child dumpable again, which is the child's business.)"""
    if _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(error)}")


def is_dumpable() -> bool:
    return bool(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def harden_process() -> None:
    """At every jobyard command's start: non-dumpable, and files it creates are its own."""
    make_non_dumpable()
    os.umask(PRIVATE_UMASK)
