"""A uid of its own for each running job (`JOBYARD_JOB_UIDS`): jobs cannot read each other's
`/proc/<pid>/environ`, signal each other, nor enter each other's directories.

A worker leases two uids per slot from the range for as long as it runs: one its jobs run as,
one nothing runs as, which the spawner's sweep after each job runs as (`spawning.sweep`).
The leases are locks on one byte each of a file only root may write, so workers on one host
may share a range (each gets uids of its own) and a dead worker's uids come free again;
whatever its jobs left running is swept before those uids next run a job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from jobyard.errors import JobyardError
from jobyard.worker import survivors
from jobyard.worker.spawning import JobUser

LOCK_FILE = "/run/jobyard-job-uids.lock"
SUBUID_FILE = "/etc/subuid"
UIDS_PER_SLOT = 2  # the job's, and its sweeper's


class _Held:
    """The uids this process holds. POSIX locks exclude other processes only (a second pool
    of this process would take the same uids), and closing any descriptor of the file would
    drop them all, so the file is opened once, for the process's life."""

    def __init__(self) -> None:
        self.uids: set[int] = set()
        self.lock = threading.Lock()
        self.fd = -1


_HELD = _Held()


class UidsUnavailable(JobyardError):
    """The job uids cannot be leased as configured."""


@dataclass
class JobUids:
    """The uids a worker leased: `take` one for each job to run, `give_back` at its end."""

    base: JobUser  # the configured user: its name (USER, LOGNAME) and its group
    pairs: list[tuple[int, int]]  # (job uid, sweeper uid), one per slot
    span: tuple[int, int] = (0, -1)  # the whole range (first, last) these were leased from
    _free: list[JobUser] = field(init=False)
    _unswept: set[int] = field(init=False)  # may run something of an earlier job
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        gid = self.base.gid
        users = [JobUser(self.base.name, uid, gid, (gid,), sweeper) for uid, sweeper in self.pairs]
        self._free = users[::-1]  # a stack: a quiet worker reuses its first few uids
        self._unswept = {user.uid for user in users}  # a dead worker's jobs may have left some

    @property
    def first_user(self) -> JobUser:
        """What every job runs as but the uid: to try things out as one of them."""
        uid, sweeper = self.pairs[0]
        return JobUser(self.base.name, uid, self.base.gid, (self.base.gid,), sweeper)

    def take(self) -> tuple[JobUser, bool]:
        """A uid no running job of this worker has, and whether to sweep it first."""
        with self._lock:
            user = self._free.pop()  # there are as many as slots
            return user, user.uid in self._unswept

    def give_back(self, user: JobUser, *, swept: bool) -> None:
        """At a job's end: `swept` once the spawner reported the end (it sweeps first)."""
        with self._lock:
            if swept:
                self._unswept.discard(user.uid)
            else:
                self._unswept.add(user.uid)
            self._free.append(user)

    def owns(self, uid: int) -> bool:
        """Whether `uid` is of the job uids' range (whoever holds it now)."""
        return self.span[0] <= uid <= self.span[1]

    def stop_survivors(self) -> list[int]:
        """Kill whatever runs as a uid of the range that no live worker holds, or as one of
        this worker's own uids that runs no job of its now and is not swept yet: what a
        dead worker's jobs left. The uids that had something to kill."""
        if not self.pairs:
            return []
        sweeper = self.pairs[0][1]  # nothing ever runs as a sweeper uid
        running = survivors.running_uids(*self.span)
        with self._lock, _unheld(running) as free:
            idle = {user.uid for user in self._free} & self._unswept
            swept = sorted(set(free) | idle)
            survivors.sweep_uids(swept, sweeper=sweeper)
            self._unswept -= idle
        return sorted(set(swept) & running)

    def release(self) -> None:
        """Let other workers lease these uids (every job of this worker has ended)."""
        unlock(uid for pair in self.pairs for uid in pair)
        self.pairs = []


def lease(base: JobUser, first: int, last: int, *, slots: int) -> JobUids:
    """Lease two uids per slot from `first`-`last`, or say why not (`UidsUnavailable`)."""
    setting = f"JOBYARD_JOB_UIDS={first}-{last}"
    needed = UIDS_PER_SLOT * max(slots, 1)
    size = last - first + 1
    if size < needed:
        raise UidsUnavailable(
            f"{setting} holds {size} uids, but a worker of {slots} slots needs {needed} (two "
            "per slot: one its job runs as, one that cleans up after it)"
        )
    check_unassigned(first, last, setting)
    leased = _lock_uids(first, last, needed)
    if len(leased) < needed:
        unlock(leased)
        raise UidsUnavailable(
            f"{setting}: only {len(leased)} of its uids are free, a worker of {slots} slots "
            f"needs {needed}; other jobyard workers on this host hold the rest (give this one "
            "a range of its own, or a larger one)"
        )
    return JobUids(base, list(zip(leased[::2], leased[1::2], strict=True)), (first, last))


def check_unassigned(first: int, last: int, setting: str) -> None:
    """No user of the password database, nor any user's subordinate uids (rootless
    containers run as those), is in the range: jobyard kills whatever runs as its uids."""
    for entry in pwd.getpwall():
        if first <= entry.pw_uid <= last:
            raise UidsUnavailable(
                f"{setting}: uid {entry.pw_uid} is the user {entry.pw_name}'s; choose a range "
                "no user has (jobyard kills whatever runs as its uids)"
            )
    for owner, start, count in _subordinate_ranges():
        if start <= last and first < start + count:
            raise UidsUnavailable(
                f"{setting} overlaps {owner}'s subordinate uids {start}-{start + count - 1} "
                f"({SUBUID_FILE}); choose a range no user has"
            )


def _subordinate_ranges() -> Iterator[tuple[str, int, int]]:
    try:
        with open(SUBUID_FILE, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                owner, _, rest = line.strip().partition(":")
                start, _, count = rest.partition(":")
                if start.isdigit() and count.isdigit():
                    yield owner, int(start), int(count)
    except FileNotFoundError:
        return


def _lock_uids(first: int, last: int, needed: int) -> list[int]:
    """Up to `needed` uids of the range that no other worker holds and that the user
    database does not know (one the enumeration missed, such as an LDAP user's)."""
    leased: list[int] = []
    with _HELD.lock:
        fd = _lock_file()
        for uid in range(first, last + 1):
            if len(leased) == needed:
                break
            if uid in _HELD.uids or _known_uid(uid):
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, uid)
            except OSError:  # another process holds it
                continue
            _HELD.uids.add(uid)
            leased.append(uid)
    return leased


@contextlib.contextmanager
def _unheld(candidates: Iterable[int]) -> Iterator[list[int]]:
    """Of `candidates`, the uids that no worker holds, held by this process meanwhile (so no
    worker starts a job as one of them while they are swept)."""
    held: list[int] = []
    try:
        with _HELD.lock:
            fd = _lock_file()
            for uid in sorted(candidates):
                if uid in _HELD.uids or _known_uid(uid):
                    continue
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, uid)
                except OSError:  # a live worker's
                    continue
                _HELD.uids.add(uid)
                held.append(uid)
        yield held
    finally:
        unlock(held)


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def unlock(uids: Iterable[int]) -> None:
    with _HELD.lock:
        for uid in uids:
            if uid in _HELD.uids:
                fcntl.lockf(_HELD.fd, fcntl.LOCK_UN, 1, uid)
                _HELD.uids.discard(uid)


def _lock_file() -> int:
    """The leases' file, root's alone; opened once per process (with `_HELD.lock` held)."""
    if _HELD.fd >= 0:
        return _HELD.fd
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(LOCK_FILE, flags, 0o600)
    except OSError as error:
        raise UidsUnavailable(f"cannot open {LOCK_FILE}, the job uids' leases: {error}") from None
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or found.st_uid != 0 or found.st_mode & 0o077:
        os.close(fd)
        raise UidsUnavailable(f"{LOCK_FILE} must be a file of root's, mode 0600: remove it")
    with contextlib.suppress(OSError):
        os.set_inheritable(fd, False)
    _HELD.fd = fd
    return fd
