"""Managing accounts: add, import a class roster, list, reset, disable, change a password, and the
acting user (`actor_for`, `cli_actor`) that every `core.workspace` call takes.

May import: core.accounts.store, core.accounts.passwords, core.access, core.errors, the standard library.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.access import LOCAL, ROLES, Actor, check_account_name
from core.accounts.passwords import check_strength, hash_password, one_time_password, verify_password
from core.accounts.store import AccountStore, User, open_accounts
from core.errors import ConfigError

MAX_ROSTER_BYTES = 1 << 20
MAX_ROSTER_ROWS = 2000


@dataclass(frozen=True)
class NewAccount:
    """A user just made or reset; `password` is the one-time password to hand over (None when the
    caller chose the password)."""

    user: User
    password: str | None


def _role(role: str) -> str:
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    return role


def add_user(name: str, role: str, password: str | None = None, *, by: str = LOCAL.name,
             store: AccountStore | None = None) -> NewAccount:
    """Create an account. Without `password` it gets a one-time password that must be changed at
    the first login."""
    store = store or open_accounts()
    name = check_account_name((name or "").strip().lower())
    role = _role(role)
    if password is not None:
        check_strength(password, name)
    given = password if password is not None else one_time_password()
    user = User(name=name, role=role, must_change=password is None, created=time.time())
    store.add_user(user, hash_password(given))
    store.audit(by, "user-add", name, role)
    return NewAccount(user=user, password=None if password is not None else given)


def import_roster(source: str | Path | bytes, *, role: str = "student", by: str = LOCAL.name,
                  store: AccountStore | None = None) -> list[NewAccount]:
    """Accounts for every row of a roster CSV (a `name` column, optionally `role`), each with a
    one-time password. All rows are checked before any account is made; a bad row names its line."""
    store = store or open_accounts()
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()[: MAX_ROSTER_BYTES + 1]
    if len(raw) > MAX_ROSTER_BYTES:
        raise ConfigError(f"The roster is larger than {MAX_ROSTER_BYTES >> 20} MiB; split it.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"The roster is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.") from exc
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "name" not in fields:
        raise ConfigError("The roster has no 'name' column; its first line must be a header such as name,role.")
    reader.fieldnames = fields
    wanted: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if len(wanted) >= MAX_ROSTER_ROWS:
            raise ConfigError(f"The roster has more than {MAX_ROSTER_ROWS} rows; split it.")
        name = (row.get("name") or "").strip().lower()
        if not name:
            continue
        try:
            check_account_name(name)
            r = _role(row.get("role") or role)
        except ConfigError as exc:
            raise ConfigError(f"Roster line {line}: {exc} Nothing was imported.") from None
        if name in seen or store.get_user(name) is not None:
            raise ConfigError(f"Roster line {line}: user {name!r} is listed twice or exists already. "
                              "Nothing was imported.")
        seen.add(name)
        wanted.append((name, r))
    if not wanted:
        raise ConfigError("The roster lists no names.")
    return [add_user(n, r, by=by, store=store) for n, r in wanted]


def list_users(store: AccountStore | None = None) -> list[User]:
    return (store or open_accounts()).list_users()


def _existing(store: AccountStore, name: str) -> User:
    user = store.get_user((name or "").strip().lower())
    if user is None:
        raise ConfigError(f"No user {str(name)[:40]!r}; list users with the users list command.")
    return user


def reset_password(name: str, password: str | None = None, *, by: str = LOCAL.name,
                   store: AccountStore | None = None) -> NewAccount:
    """A new password (one-time unless given) and the end of every session of that user."""
    store = store or open_accounts()
    user = _existing(store, name)
    if password is not None:
        check_strength(password, user.name)
    given = password if password is not None else one_time_password()
    store.set_password(user.name, hash_password(given), must_change=password is None)
    store.revoke_sessions(user=user.name)
    store.clear_failures(user.name)
    store.audit(by, "user-reset", user.name)
    return NewAccount(user=store.get_user(user.name) or user, password=None if password is not None else given)


def set_disabled(name: str, disabled: bool = True, *, by: str = LOCAL.name,
                 store: AccountStore | None = None) -> User:
    store = store or open_accounts()
    user = _existing(store, name)
    store.set_disabled(user.name, disabled)
    if disabled:
        store.revoke_sessions(user=user.name)
    store.audit(by, "user-disable" if disabled else "user-enable", user.name)
    return store.get_user(user.name) or user


def change_password(name: str, current: str, new: str, *, keep_token: str | None = None,
                    store: AccountStore | None = None) -> User:
    """The user's own change (first login, or any time): needs the current password. Every other
    session of the user ends (a stolen password must not leave a thief signed in); the one of
    `keep_token` (the browser that made the change) goes on."""
    store = store or open_accounts()
    user = _existing(store, name)
    if not verify_password(store.password_hash(user.name), current or ""):
        raise ConfigError("The current password is wrong.")
    check_strength(new, user.name)
    if new == current:
        raise ConfigError("The new password must differ from the current one.")
    store.set_password(user.name, hash_password(new), must_change=False)
    from core.accounts.sessions import end_other_sessions

    end_other_sessions(user.name, keep_token, store=store)
    store.audit(user.name, "password-change", user.name)
    return store.get_user(user.name) or user


def has_instructor(store: AccountStore | None = None) -> bool:
    return any(u.role == "instructor" and not u.disabled for u in (store or open_accounts()).list_users())


def actor_for(user: User) -> Actor:
    return Actor(user.name, user.role)


def cli_actor(store: AccountStore | None = None) -> Actor:
    """Who a command acts for: the account named by `$TUNESCOPE_USER` (it must exist and be enabled),
    else the local user. Whoever runs commands on the server owns its files anyway; this lets an
    instructor act as a student, and lets tests check that the CLI applies the same rule."""
    name = os.environ.get("TUNESCOPE_USER", "").strip().lower()
    if not name:
        return LOCAL
    user = (store or open_accounts()).get_user(name)
    if user is None or user.disabled:
        raise ConfigError(f"TUNESCOPE_USER names {name[:40]!r}, which is not an enabled account; unset it to act "
                          "as the local user.")
    return actor_for(user)


def is_loopback(host: str | None) -> bool:
    """Whether a listen address is reachable from this machine only."""
    import ipaddress

    h = (host or "127.0.0.1").strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # a host name: assume the network can reach it


AUTH_ENV = "TUNESCOPE_AUTH"  # "login": always ask for a login; "off": never (the explicit no-auth option)


def auth_mode(host: str | None, setting: str | None = None) -> str:
    """How the dashboard treats visitors: "login" (accounts), "open" (no login although the network
    can reach it: started with the no-auth option, pages show a warning) or "local" (loopback: one
    local user, no login). `setting` defaults to `$TUNESCOPE_AUTH`."""
    setting = (os.environ.get(AUTH_ENV, "") if setting is None else setting).strip().lower()
    if setting == "login":
        return "login"
    if setting == "off":
        return "local" if is_loopback(host) else "open"
    return "local" if is_loopback(host) else "login"


SSO_DOMAIN_ENV = "TUNESCOPE_SSO_DOMAIN"  # e.g. school.edu: only addresses of that domain may sign in


def account_for_sso(email: object, *, store: AccountStore | None = None) -> User | None:
    """The enabled account a single-sign-on identity maps to: the one named like the part of its e-mail
    address before '@' (lower-cased), when that is a valid, existing user name and, if
    `$TUNESCOPE_SSO_DOMAIN` is set, the address is of that domain. The identity provider proves the
    address; the roster decides who has an account and which role.

    Without `$TUNESCOPE_SSO_DOMAIN` nobody is let in this way: a provider that serves many
    organisations would otherwise give anyone's "teacher@elsewhere" the roster's teacher account. The
    caller must also have checked that the provider verified the address."""
    if not isinstance(email, str) or email.count("@") != 1 or len(email) > 254:
        return None
    local, domain = email.strip().lower().split("@")
    wanted = os.environ.get(SSO_DOMAIN_ENV, "").strip().lower()
    if not wanted or domain != wanted:
        return None
    from core.access import USER_NAME

    if not USER_NAME.fullmatch(local):
        return None
    user = (store or open_accounts()).get_user(local)
    return None if user is None or user.disabled else user
