"""The two stored forms of a caller's token in the job table: an HMAC and a sealed copy.

A job outlives the request that submitted it, and after a restart it must still
read the origin with its owner's rights, so the token has to be kept; the
architecture forbids keeping it in clear. It is sealed with Fernet (AES-128-CBC
plus HMAC-SHA256, from `cryptography`) under the job token key, and erased when
the job ends. Ownership checks use an HMAC of the token under a key derived from
the same secret, so they hold across restarts too (a per-process secret, as the
server's access cache uses, would orphan every job at the next start).

The key is `ACECHART_JOB_TOKEN_KEY` when set (instances sharing a queue must set
the same one); otherwise a random key generated once and kept beside the
database, readable only by its owner. The webhook signing key is kept the same
way (`stored_key`, `WEBHOOK_KEY_FILE`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["KEY_FILE", "WEBHOOK_KEY_FILE", "TokenVault", "stored_key"]

logger = logging.getLogger(__name__)

#: Name of the generated key file in the data directory.
KEY_FILE = "job-token.key"
#: Name of the generated webhook signing key file in the data directory.
WEBHOOK_KEY_FILE = "job-webhook.key"


class TokenVault:
    """Seals tokens for storage and fingerprints them for ownership checks."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the job token key must not be empty")
        material = secret.encode()
        seal_key = hashlib.sha256(b"acechart job token seal\0" + material).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(seal_key))
        self._hmac_key = hashlib.sha256(b"acechart job token hmac\0" + material).digest()

    @classmethod
    def from_settings(cls, key: str | None, data_dir: str | os.PathLike[str]) -> TokenVault:
        """The configured key, else the one kept in `{data_dir}/job-token.key` (made once)."""
        if key:
            return cls(key)
        return cls(stored_key(Path(data_dir) / KEY_FILE, "job token key"))

    def fingerprint(self, token: str) -> str:
        """HMAC-SHA256 of the token (hex): stable across restarts, useless to an attacker."""
        return hmac.new(self._hmac_key, token.encode(), hashlib.sha256).hexdigest()

    def seal(self, token: str) -> str:
        """The token encrypted and authenticated, as ASCII for a TEXT column."""
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The token back; `ValueError` when it was sealed under another key or altered."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("the stored token cannot be unsealed with this key") from exc


def stored_key(path: Path, what: str = "key") -> str:
    """Read the key file, creating it (mode 0600, never overwritten) on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it between our read and our create: use theirs.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    logger.info("generated the %s in %s", what, path)
    return key
