"""Password hashing (Argon2id from argon2-cffi: memory-hard, salted, parameters inside the hash) and
one-time passwords. Nothing here stores or prints a password; callers pass them straight through.

May import: argon2, core.errors, the standard library.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import ConfigError

MIN_LENGTH = 8
MAX_LENGTH = 256  # hashing cost grows with the input; nobody types more
# argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes). Tests lower them.
HASHER = PasswordHasher()
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied from a printout


def check_strength(password: str, user: str = "") -> None:
    """ConfigError unless `password` is long enough and not the user name."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise ConfigError(f"The password is too short; use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ConfigError(f"The password is too long; use at most {MAX_LENGTH} characters.")
    if user and password.lower() == user.lower():
        raise ConfigError("The password must not be the user name.")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches. A missing user is checked against a dummy hash, so the answer
    takes as long as for a real one (no user-name probing by timing)."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(HASHER.hash(secrets.token_hex(16)))
    return _DUMMY[0]


def one_time_password() -> str:
    """A random password to hand out once (12 characters, ~59 bits); its owner replaces it at first login."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
