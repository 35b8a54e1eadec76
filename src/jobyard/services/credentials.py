"""How secrets are checked: argon2 for passwords (a bounded number at once, and the same work
for a login that does not exist), HMAC-SHA256 with the server's key for tokens, and the tries
counted against logins that do not exist."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from jobyard.errors import TooManyAttempts, ValidationFailed
from jobyard.settings import Settings

logger = logging.getLogger(__name__)

LOCK_AFTER_FAILURES = 5
LOCK_SECONDS = 60
KEY_FILE = "secret.key"
KEY_BYTES = 32
MIN_KEY_LENGTH = 16
# Callers beyond the running hashes wait in a short queue; past it they are told to retry.
WAITING_PER_SLOT = 8
HASH_WAIT_SECONDS = 10.0
VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 10_000
UNKNOWN_LOGINS_KEPT = 10_000


class HashSlots:
    """At most `limit` password hashes at once: argon2 takes 64 MiB each, so unbounded
    parallel logins would take the server's memory. A bounded queue waits for a slot."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._most_waiting = limit * WAITING_PER_SLOT
        self._waiting = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._waiting >= self._most_waiting:
                raise _busy()
            self._waiting += 1
        try:
            taken = self._slots.acquire(timeout=HASH_WAIT_SECONDS)
        finally:
            with self._lock:
                self._waiting -= 1
        if not taken:
            raise _busy()
        try:
            yield
        finally:
            self._slots.release()


def _busy() -> TooManyAttempts:
    return TooManyAttempts("too many password checks at once; try again shortly", retry_after=1)


class Passwords:
    """Argon2 hashes and checks, within the slots; recent successes are remembered so that
    HTTP Basic clients do not pay argon2 on every request (keyed by the stored hash, so a
    password change forgets them)."""

    def __init__(self, max_concurrent: int) -> None:
        self._hasher = PasswordHasher()
        self._slots = HashSlots(max_concurrent)
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        with self._slots.slot():
            return self._hasher.hash(password)

    def remembers(self, stored: str | None, password: str) -> bool:
        """Whether this password matched this hash within the last minute (no hashing)."""
        if not stored:
            return False
        with self._lock:
            return self._seen.get(_cache_key(stored, password), 0.0) > time.monotonic()

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether the password matches; with no stored hash (a login that does not exist,
        or has no password) the same work is done against a dummy, and the answer is no."""
        if self.remembers(stored, password):
            return True
        target = stored or self._dummy_hash()
        with self._slots.slot():
            try:
                self._hasher.verify(target, password)
            except (VerificationError, InvalidHashError):
                return False
        if not stored:
            return False
        with self._lock:
            if len(self._seen) > VERIFIED_CACHE_SIZE:
                self._seen.clear()
            self._seen[_cache_key(stored, password)] = time.monotonic() + VERIFIED_CACHE_SECONDS
        return True

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self.hash(secrets.token_urlsafe(KEY_BYTES))
        return self._dummy


def _cache_key(stored: str, password: str) -> tuple[str, str]:
    return stored, hashlib.sha256(password.encode()).hexdigest()


class UnknownLogins:
    """Failed tries against logins that do not exist, counted like real ones (so that a
    lockout does not tell which logins exist); in memory, the most recent few thousand."""

    def __init__(self, *, limit: int, lock_seconds: float) -> None:
        self._limit = limit
        self._lock_seconds = lock_seconds
        self._tries: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(self, login: str) -> float:
        """Count a try; the seconds the login stays locked if it is (and then no try)."""
        now = time.monotonic()
        with self._lock:
            failures, locked_until = self._tries.pop(login, (0, 0.0))
            if locked_until > now:
                self._tries[login] = (failures, locked_until)
                return locked_until - now
            failures += 1
            if failures >= self._limit:
                failures, locked_until = 0, now + self._lock_seconds
            self._tries[login] = (failures, locked_until)
            while len(self._tries) > UNKNOWN_LOGINS_KEPT:
                self._tries.popitem(last=False)
            return 0.0


class TokenKey:
    """HMAC-SHA256 of tokens under the server's key, which lives outside the database (so a
    copy of the database alone cannot test guesses of a token): JOBYARD_SECRET_KEY, or else
    `secret.key` in the data directory, made on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def digest(self, token: str) -> str:
        return hmac.new(self._secret(), token.encode(), hashlib.sha256).hexdigest()

    def derived(self, purpose: str) -> bytes:
        """A key of 32 bytes for one purpose, derived from the server's key (so that no two
        uses share a key, and the server's own is never used as is)."""
        return hmac.new(self._secret(), f"jobyard:{purpose}".encode(), hashlib.sha256).digest()

    @staticmethod
    def legacy_digest(token: str) -> str:
        """Plain SHA-256, as earlier releases stored tokens: accepted once, then re-hashed."""
        return hashlib.sha256(token.encode()).hexdigest()

    def _secret(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = load_key(self._settings)
        return self._key


def load_key(settings: Settings) -> bytes:
    """The configured key, or the data directory's key file (created if missing)."""
    if settings.secret_key:
        key = settings.secret_key.encode()
        if len(key) < MIN_KEY_LENGTH:
            raise ValidationFailed(
                f"JOBYARD_SECRET_KEY needs at least {MIN_KEY_LENGTH} characters "
                "(`openssl rand -hex 32` makes a good one)"
            )
        return key
    path = settings.data_dir / KEY_FILE
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        logger.warning(
            "tokens are hashed with the key in %s: every server and worker sharing this "
            "database needs the same key (set JOBYARD_SECRET_KEY, or copy that file)",
            path,
        )
    return _read_or_create(path)


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        _create_key_file(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("%s is readable by others (mode %o): make it 0600", path, mode)
    key = path.read_bytes()
    if len(key) < MIN_KEY_LENGTH:
        raise ValidationFailed(f"{path} holds {len(key)} bytes; a key needs {MIN_KEY_LENGTH}")
    return key


def _create_key_file(path: Path) -> None:
    """Write the key whole under a temporary name, then link it into place: a process that
    races this one either links first or reads the finished file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process made it first: use theirs
        logger.info("created the token key %s", path)
    finally:
        temporary.unlink(missing_ok=True)


class Credentials:
    """A process's password hashing, token key and counts of unknown logins."""

    def __init__(self, settings: Settings) -> None:
        self.passwords = Passwords(settings.max_concurrent_hashes)
        self.tokens = TokenKey(settings)
        self.unknown_logins = UnknownLogins(limit=LOCK_AFTER_FAILURES, lock_seconds=LOCK_SECONDS)
