"""Signing in: the rate limit on failed logins, one-time login tickets, and the signed, expiring
session token that the dashboard keeps in an HttpOnly cookie.

The flow: `login` checks the password (and the rate limit) and returns a ticket that is good for
one use within a minute; the browser takes it to the server's `/auth/session` address, which calls
`redeem` and sets the cookie; every page run calls `user_for(token)`. A token is
``<session id>.<expiry>.<HMAC-SHA256 of both>`` under a server secret kept in
`$TUNESCOPE_HOME/secret.key` (0600), and the session must also be alive in the database, so logout,
a password reset or disabling an account ends it at once, and a server restart does not.

May import: core.accounts.store, core.accounts.passwords, core.access, core.errors, core.runs
(the home folder), the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.access import USER_NAME
from core.accounts.passwords import verify_password
from core.accounts.store import AccountStore, User, open_accounts
from core.errors import TunescopeError
from core.runs import tunescope_home

SESSION_COOKIE = "tunescope_session"
SESSION_DAYS = 7
TICKET_TTL_S = 60.0
MAX_FAILURES = 5  # wrong passwords for one account in WINDOW_S before its logins pause
# From one address: higher, because a classroom NAT or a reverse proxy puts a whole class behind one.
MAX_FAILURES_PER_CLIENT = 25
# Argon2id takes 64 MiB per check: a burst of logins must not take the memory of a training job.
_HASHING = threading.BoundedSemaphore(4)
WINDOW_S = 15 * 60.0
LOCK_MAX_S = 15 * 60.0
_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{10})\.([0-9a-f]{64})")


class LoginRefused(TunescopeError):
    """A login that did not succeed; `wait_s` > 0 when it was refused by the rate limit."""

    def __init__(self, message: str, wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.wait_s = wait_s


def lock_base_s() -> float:
    """The first pause after MAX_FAILURES wrong passwords (it doubles with each further one).
    `$TUNESCOPE_LOGIN_LOCK_S` changes it, e.g. for a demo of the rate limit."""
    try:
        return max(0.0, float(os.environ.get("TUNESCOPE_LOGIN_LOCK_S", "30")))
    except ValueError:
        return 30.0


def wait_after(failures: Sequence[float], now: float, *, max_failures: int = MAX_FAILURES,
               window_s: float = WINDOW_S, base_s: float | None = None, cap_s: float = LOCK_MAX_S) -> float:
    """Seconds until the next login may be tried, given the times of recent failures: 0 while fewer
    than `max_failures` fell in the window; then `base_s` after the last one, doubling per extra one."""
    base = lock_base_s() if base_s is None else base_s
    recent = sorted(t for t in failures if t >= now - window_s)
    if len(recent) < max_failures:
        return 0.0
    pause = min(cap_s, base * 2 ** (len(recent) - max_failures))
    return max(0.0, recent[-1] + pause - now)


# -- the server secret and tokens -------------------------------------------------------------------


def _secret_path() -> Path:
    return tunescope_home() / "secret.key"


def secret_key() -> bytes:
    """The server's signing key, made once (0600) and kept across restarts."""
    path = _secret_path()
    try:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) != 32:
            raise ValueError("not 32 bytes")
        return key
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise TunescopeError(f"{path} is damaged (not a hex key); delete it to make a new one (everyone is "
                             "logged out).") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Written whole under another name, then linked in place: a reader never sees a half-written key.
    tmp = path.with_name(f".secret.key.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: use theirs
        key = bytes.fromhex(path.read_text().strip())
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _mac(session_id: str, expires: int) -> str:
    return hmac.new(secret_key(), f"{session_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def _digest(value: str) -> str:
    """What the database keeps instead of a session id or ticket (a stolen copy cannot be replayed)."""
    return hashlib.sha256(value.encode()).hexdigest()


def make_token(session_id: str, expires: float) -> str:
    exp = int(expires)
    return f"{session_id}.{exp:010d}.{_mac(session_id, exp)}"


def parse_token(token: object, now: float | None = None) -> str | None:
    """The session id of a well-formed, correctly signed, unexpired token; None for anything else."""
    if not isinstance(token, str) or len(token) > 120:
        return None
    m = _TOKEN.fullmatch(token)
    if not m:
        return None
    sid, exp, mac = m.group(1), int(m.group(2)), m.group(3)
    if not hmac.compare_digest(mac, _mac(sid, exp)):
        return None
    if exp < (time.time() if now is None else now):
        return None
    return sid


# -- the flow ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    ticket: str
    user: User


def login(name: str, password: str, client: str = "", *, browser: str = "", store: AccountStore | None = None,
          now: float | None = None) -> LoginResult:
    """Check a password; on success a one-time ticket for `redeem`, good only in the browser `browser`
    (its browser-id cookie), so a ticket sent to someone else cannot sign them in to the sender's
    account. Raises LoginRefused with a message for the person at the keyboard (the same one for an
    unknown user and a wrong password)."""
    store = store or open_accounts()
    now = time.time() if now is None else now
    name = (name or "").strip().lower()
    client = (client or "")[:64]
    known = bool(USER_NAME.fullmatch(name))
    waits = [wait_after(store.failures_since(now - WINDOW_S, client=client), now,
                        max_failures=MAX_FAILURES_PER_CLIENT)] if client else []
    if known:
        waits.append(wait_after(store.failures_since(now - WINDOW_S, user=name), now))
    wait = max(waits, default=0.0)
    if wait > 0:  # not logged: the failures that caused it were, and a loop here must not grow the log
        raise LoginRefused(f"Too many failed logins; try again in {max(1, round(wait))} s.", wait_s=wait)
    user = store.get_user(name) if known else None
    with _HASHING:
        ok = verify_password(store.password_hash(name) if user else None, password or "")
    if not ok:
        store.add_failure(name if known else "?", client, now)
        store.audit(name if known else "?", "login-failed", "", "", client)
        raise LoginRefused("Wrong user name or password.")
    if user is None or user.disabled:
        store.audit(name, "login-failed", "", "account disabled", client)
        raise LoginRefused("This account is disabled; ask your instructor to enable it.")
    store.clear_failures(name)
    ticket = secrets.token_urlsafe(32)
    store.add_ticket(_digest(ticket), name, now + TICKET_TTL_S, _digest(browser))
    store.audit(name, "login", "", "", client)
    return LoginResult(ticket=ticket, user=user)


def redeem(ticket: object, client: str = "", *, browser: object = "", store: AccountStore | None = None,
           now: float | None = None) -> tuple[str, int] | None:
    """Exchange a fresh login ticket for a session: (token for the cookie, its max-age in seconds),
    or None when the ticket is unknown, used, expired or made for another browser."""
    if not isinstance(ticket, str) or not 20 <= len(ticket) <= 100 or not isinstance(browser, str):
        return None
    store = store or open_accounts()
    now = time.time() if now is None else now
    name = store.take_ticket(_digest(ticket), now, _digest(browser))
    user = store.get_user(name) if name else None
    if user is None or user.disabled:
        return None
    sid = secrets.token_hex(16)
    max_age = SESSION_DAYS * 86400
    store.add_session(_digest(sid), user.name, now + max_age, client[:64])
    return make_token(sid, now + max_age), max_age


def user_for(token: object, *, store: AccountStore | None = None, now: float | None = None) -> User | None:
    """The signed-in user a session token stands for, or None (tampered, expired, logged out, disabled)."""
    now = time.time() if now is None else now
    sid = parse_token(token, now)
    if sid is None:
        return None
    store = store or open_accounts()
    row = store.session(_digest(sid))
    if row is None or row["revoked"] is not None or row["expires"] < now:
        return None
    user = store.get_user(row["user"])
    return None if user is None or user.disabled else user


def end_other_sessions(user: str, keep_token: str | None = None, *, store: AccountStore | None = None) -> None:
    """End every session (and unused ticket) of `user` except the one of `keep_token`."""
    store = store or open_accounts()
    keep = parse_token(keep_token) if keep_token else None
    store.revoke_sessions(user=user, except_session=_digest(keep) if keep else None)


def logout(token: object, client: str = "", *, store: AccountStore | None = None) -> str | None:
    """End the session of `token`; the user it belonged to, or None if it was not a live one."""
    store = store or open_accounts()
    user = user_for(token, store=store)
    sid = parse_token(token)
    if user is None or sid is None:
        return None
    store.revoke_sessions(session_id=_digest(sid))
    store.audit(user.name, "logout", "", "", client)
    return user.name
