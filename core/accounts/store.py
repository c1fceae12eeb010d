"""The account tables: users, login sessions, one-time login tickets, failed logins and the audit log,
behind `AccountStore`, with the SQLite implementation that keeps them in the job database's file
(`open_accounts` opens the one the job store uses, so a server database replaces both together).

The audit table is append-only: the store has no call that changes or deletes a row, and triggers in
the database refuse UPDATE and DELETE on it.

May import: core.jobs.store (the database file and its transactions), core.access, core.errors, the
standard library.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from core.access import ROLES
from core.errors import ConfigError
from core.jobs.store import SQLiteJobStore, open_store


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool = False
    must_change: bool = False  # a one-time password: the next login asks for a new one
    created: float = 0.0
    password_changed: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    target: str
    detail: str
    client: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AccountStore(abc.ABC):
    """What sign-in, the user commands and the instructor page need from the server database."""

    # users
    @abc.abstractmethod
    def add_user(self, user: User, password_hash: str) -> None:
        """Insert a user; ConfigError if the name is taken."""

    @abc.abstractmethod
    def get_user(self, name: str) -> User | None: ...

    @abc.abstractmethod
    def password_hash(self, name: str) -> str | None: ...

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def set_password(self, name: str, password_hash: str, must_change: bool) -> bool: ...

    @abc.abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> bool: ...

    @abc.abstractmethod
    def set_role(self, name: str, role: str) -> bool: ...

    # sessions and tickets
    @abc.abstractmethod
    def add_session(self, session_id: str, user: str, expires: float, client: str) -> None: ...

    @abc.abstractmethod
    def session(self, session_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def revoke_sessions(self, *, session_id: str | None = None, user: str | None = None,
                        except_session: str | None = None) -> int:
        """End one session, or all of a user's (but `except_session`) together with their unused tickets."""

    @abc.abstractmethod
    def add_ticket(self, ticket_hash: str, user: str, expires: float, browser_hash: str) -> None: ...

    @abc.abstractmethod
    def take_ticket(self, ticket_hash: str, now: float, browser_hash: str) -> str | None:
        """The user of an unused, unexpired ticket made for this browser, used up by this call; else None."""

    # failed logins
    @abc.abstractmethod
    def add_failure(self, user: str, client: str, at: float) -> None: ...

    @abc.abstractmethod
    def failures_since(self, since: float, *, user: str | None = None, client: str | None = None) -> list[float]: ...

    @abc.abstractmethod
    def clear_failures(self, user: str) -> None: ...

    # audit
    @abc.abstractmethod
    def audit(self, actor: str, action: str, target: str = "", detail: str = "", client: str = "") -> None: ...

    @abc.abstractmethod
    def audit_log(self, limit: int | None = 200, action: str | None = None) -> list[AuditEntry]:
        """Newest first."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    pw_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    must_change INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    password_changed REAL
);
CREATE TABLE IF NOT EXISTS login_sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    revoked REAL,
    client TEXT
);
CREATE INDEX IF NOT EXISTS login_sessions_user ON login_sessions (user);
CREATE TABLE IF NOT EXISTS login_tickets (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires REAL NOT NULL,
    used REAL,
    browser TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS login_failures (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_at ON login_failures (at);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT ''
)
"""
# One statement each: a trigger's body has its own ';'.
_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS audit_no_{op.lower()} BEFORE {op} ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for op in ("UPDATE", "DELETE"))


def _user(row: Any) -> User:
    return User(name=row["name"], role=row["role"], disabled=bool(row["disabled"]),
                must_change=bool(row["must_change"]), created=row["created"],
                password_changed=row["password_changed"])


class SQLiteAccountStore(AccountStore):
    """The account tables in the job store's SQLite file, using its transactions (WAL, busy timeout,
    damage checks)."""

    def __init__(self, db: SQLiteJobStore) -> None:
        self.db = db
        with db.transaction() as c:
            for stmt in (*filter(str.strip, _SCHEMA.split(";")), *_TRIGGERS):
                c.execute(stmt)

    # -- users -----------------------------------------------------------------------------------

    def add_user(self, user: User, password_hash: str) -> None:
        if user.role not in ROLES:
            raise ConfigError(f"Unknown role {user.role!r}; use one of {', '.join(ROLES)}.")
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                raise ConfigError(f"User {user.name!r} exists already; reset their password instead, or pick "
                                  "another name.")
            c.execute("INSERT INTO users (name, role, pw_hash, disabled, must_change, created, password_changed) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (user.name, user.role, password_hash, int(user.disabled), int(user.must_change),
                       user.created or time.time(), user.password_changed))

    def get_user(self, name: str) -> User | None:
        rows = self.db.select("SELECT * FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def password_hash(self, name: str) -> str | None:
        rows = self.db.select("SELECT pw_hash FROM users WHERE name = ?", (name,))
        return rows[0]["pw_hash"] if rows else None

    def list_users(self) -> list[User]:
        return [_user(r) for r in self.db.select("SELECT * FROM users ORDER BY name")]

    def _set(self, name: str, sql: str, params: Sequence[Any]) -> bool:
        with self.db.transaction() as c:
            return c.execute(f"UPDATE users SET {sql} WHERE name = ?", (*params, name)).rowcount == 1

    def set_password(self, name: str, password_hash: str, must_change: bool) -> bool:
        return self._set(name, "pw_hash = ?, must_change = ?, password_changed = ?",
                         (password_hash, int(must_change), time.time()))

    def set_disabled(self, name: str, disabled: bool) -> bool:
        return self._set(name, "disabled = ?", (int(disabled),))

    def set_role(self, name: str, role: str) -> bool:
        if role not in ROLES:
            raise ConfigError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        return self._set(name, "role = ?", (role,))

    # -- sessions and tickets --------------------------------------------------------------------

    def add_session(self, session_id: str, user: str, expires: float, client: str) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT INTO login_sessions (id, user, created, expires, client) VALUES (?, ?, ?, ?, ?)",
                      (session_id, user, time.time(), expires, client))

    def session(self, session_id: str) -> dict[str, Any] | None:
        rows = self.db.select("SELECT * FROM login_sessions WHERE id = ?", (session_id,))
        return dict(rows[0]) if rows else None

    def revoke_sessions(self, *, session_id: str | None = None, user: str | None = None,
                        except_session: str | None = None) -> int:
        if session_id is None and user is None:
            raise ValueError("name a session or a user")
        where, params = ("id = ?", [session_id]) if session_id is not None else ("user = ?", [user])
        if except_session is not None:
            where += " AND id != ?"
            params.append(except_session)
        with self.db.transaction() as c:
            if user is not None:  # a ticket handed out before a reset must not open a new session after it
                c.execute("DELETE FROM login_tickets WHERE user = ? AND used IS NULL", (user,))
            return c.execute(f"UPDATE login_sessions SET revoked = ? WHERE {where} AND revoked IS NULL",
                             (time.time(), *params)).rowcount

    def add_ticket(self, ticket_hash: str, user: str, expires: float, browser_hash: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM login_tickets WHERE expires < ?", (time.time() - 3600,))
            c.execute("INSERT INTO login_tickets (id, user, expires, browser) VALUES (?, ?, ?, ?)",
                      (ticket_hash, user, expires, browser_hash))

    def take_ticket(self, ticket_hash: str, now: float, browser_hash: str) -> str | None:
        with self.db.transaction() as c:
            # Used up even when the browser is the wrong one: a ticket that went astray is spent.
            row = c.execute("UPDATE login_tickets SET used = ? WHERE id = ? AND used IS NULL AND expires >= ? "
                            "RETURNING user, browser", (now, ticket_hash, now)).fetchone()
        return row[0] if row and row[1] == browser_hash else None

    # -- failed logins ---------------------------------------------------------------------------

    def add_failure(self, user: str, client: str, at: float) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM login_failures WHERE at < ?", (at - 86400,))
            c.execute("INSERT INTO login_failures (at, user, client) VALUES (?, ?, ?)", (at, user, client))

    def failures_since(self, since: float, *, user: str | None = None, client: str | None = None) -> list[float]:
        if (user is None) == (client is None):
            raise ValueError("name a user or a client")
        column, value = ("user", user) if user is not None else ("client", client)
        rows = self.db.select(f"SELECT at FROM login_failures WHERE {column} = ? AND at >= ? ORDER BY at",
                              (value, since))
        return [r["at"] for r in rows]

    def clear_failures(self, user: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM login_failures WHERE user = ?", (user,))

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str = "", detail: str = "", client: str = "") -> None:
        with self.db.transaction() as c:
            c.execute("INSERT INTO audit (at, actor, action, target, detail, client) VALUES (?, ?, ?, ?, ?, ?)",
                      (time.time(), actor, action, target[:200], detail[:500], client[:64]))

    def audit_log(self, limit: int | None = 200, action: str | None = None) -> list[AuditEntry]:
        sql, params = "SELECT * FROM audit", []
        if action:
            sql += " WHERE action = ?"
            params.append(action)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        fields = [f.name for f in dataclasses.fields(AuditEntry)]
        return [AuditEntry(**{k: r[k] for k in fields}) for r in self.db.select(sql, params)]


_ACCOUNT_STORES: dict[int, AccountStore] = {}


def open_accounts(url: str | None = None) -> AccountStore:
    """The account store kept with the job store named by `url` (default: the one `open_store` opens)."""
    db = open_store(url)
    key = id(db)
    if key not in _ACCOUNT_STORES:
        if not isinstance(db, SQLiteJobStore):
            raise ConfigError("This job store backend has no account tables yet; use the SQLite job store.")
        _ACCOUNT_STORES[key] = SQLiteAccountStore(db)
    return _ACCOUNT_STORES[key]
