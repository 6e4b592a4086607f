"""Password hashing for reader accounts: scrypt (RFC 7914) from :mod:`hashlib`, salted.

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` so that the cost can be raised later
without invalidating existing accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["hash_password", "verify_password", "DEFAULT_N"]

#: scrypt cost (CPU/memory): 2**15 with r=8 uses 32 MiB and about 0.1 s per check.
DEFAULT_N = 2**15
#: Lowest cost accepted (tests use it through ``RECIST_SCRYPT_N``).
MIN_N = 2**10
_R, _P, _DKLEN = 8, 1, 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN,
                          maxmem=256 * n * r + (1 << 20))


def hash_password(password: str, *, n: int | None = None) -> str:
    """Hash ``password`` with a fresh 16-byte salt.

    Parameters
    ----------
    password : str
        The password (at least 8 characters is enforced by the store, not here).
    n : int, optional
        scrypt cost, a power of two (default :data:`DEFAULT_N`, or ``RECIST_SCRYPT_N`` from the
        environment, which tests use to go faster).
    """
    n = n or int(os.environ.get("RECIST_SCRYPT_N", DEFAULT_N))
    if n < MIN_N or n & (n - 1):
        raise ValueError(f"scrypt cost n must be a power of two ≥ {MIN_N}, got {n}")
    salt = os.urandom(16)
    digest = _scrypt(password, salt, n, _R, _P)
    b64 = base64.b64encode
    return f"scrypt${n}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))
