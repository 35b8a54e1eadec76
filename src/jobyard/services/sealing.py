"""Secrets the server must read back (webhooks' signing secrets) sealed with AES-GCM under a
key derived from the server's key (`JOBYARD_SECRET_KEY` or `secret.key`, kept outside the
database): a copy of the database alone does not give them away. A new server key makes the
sealed secrets unreadable, as it makes tokens unknown (docs/webhooks.md)."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jobyard.errors import JobyardError
from jobyard.services.credentials import TokenKey

VERSION = "v1"
NONCE_BYTES = 12
PURPOSE = "webhook-secrets"


class Unreadable(JobyardError):
    """The sealed secret cannot be opened with this server's key: the key changed since it
    was sealed. Give the webhook a new secret."""


def seal(key: TokenKey, secret: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.derived(PURPOSE)).encrypt(nonce, secret.encode(), None)
    return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(key: TokenKey, stored: str) -> str:
    version, _, text = stored.partition(":")
    if version != VERSION:
        raise Unreadable
    try:
        raw = base64.urlsafe_b64decode(text)
        opened = AESGCM(key.derived(PURPOSE)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
    except (InvalidTag, ValueError):
        raise Unreadable from None
    return opened.decode()
