"""Accounts for a shared server: users and roles, password hashing, signing in (rate limit, tickets,
signed session tokens) and the append-only audit log, kept in the job database's file.

- `store`     — `User`, `AuditEntry`, the `AccountStore` interface, its SQLite implementation, `open_accounts`.
- `passwords` — Argon2id hashing and one-time passwords.
- `users`     — add, roster import, reset, disable, change password; `actor_for`, `cli_actor`.
- `sessions`  — `login` → ticket → `redeem` → token → `user_for`; `logout`; the failed-login rate limit.

What a user may do is decided in `core.access` (the rule) and `core.workspace` (the guarded calls),
not here. May import: core.jobs.store, core.access, core.errors, core.runs, argon2, the standard library.
"""

from core.accounts.sessions import SESSION_COOKIE, LoginRefused, login, logout, redeem, user_for, wait_after
from core.accounts.store import AccountStore, AuditEntry, SQLiteAccountStore, User, open_accounts
from core.accounts.users import (
    AUTH_ENV,
    NewAccount,
    account_for_sso,
    actor_for,
    add_user,
    auth_mode,
    change_password,
    cli_actor,
    has_instructor,
    import_roster,
    is_loopback,
    list_users,
    reset_password,
    set_disabled,
)

__all__ = [
    "AUTH_ENV", "SESSION_COOKIE", "AccountStore", "AuditEntry", "LoginRefused", "NewAccount", "account_for_sso",
    "SQLiteAccountStore", "User", "actor_for", "add_user", "auth_mode", "change_password", "cli_actor",
    "has_instructor", "import_roster", "is_loopback", "list_users", "login", "logout", "open_accounts", "redeem",
    "reset_password", "set_disabled", "user_for", "wait_after",
]
