"""`tunescope users …`, `tunescope audit`, `tunescope share` / `unshare`: accounts for a class server,
the audit log, and sharing runs and datasets with the class. The rules are in core.accounts,
core.access and core.workspace; these handlers parse and print.

Passwords never appear on the command line (where `ps` and shell history would keep them): they are
generated (one-time, printed once) or read from standard input with `--password-stdin`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core.cli.common import add_command, table


def add_commands(sub: Any) -> None:
    from core.access import ROLE_HELP, ROLES

    roles = "; ".join(f"{r}: {h}" for r, h in ROLE_HELP.items())
    p = add_command(sub, "users", _help_users, help="Accounts for a shared server (login, roles).")
    us = p.add_subparsers(dest="users_command", required=True, parser_class=type(p))
    a = add_command(us, "add", cmd_users_add, help="Create an account (prints a one-time password).")
    a.add_argument("name", help="User name: lower-case letters, digits, '.', '_', '-'.")
    a.add_argument("--role", choices=ROLES, default="student", help=f"Default student. {roles}.")
    a.add_argument("--password-stdin", action="store_true",
                   help="Read the password from standard input instead of generating a one-time one.")
    i = add_command(us, "import", cmd_users_import,
                    help="Create accounts from a roster CSV (name[,role]); prints one-time passwords.")
    i.add_argument("roster", help="CSV file with a header row: name[,role].")
    i.add_argument("--role", choices=ROLES, default="student", help="Role for rows without one (default student).")
    i.add_argument("--json", action="store_true", help="Print the accounts and passwords as JSON.")
    lst = add_command(us, "list", cmd_users_list, help="List accounts.")
    lst.add_argument("--json", action="store_true")
    r = add_command(us, "reset", cmd_users_reset,
                    help="New password (one-time unless --password-stdin); logs the user out everywhere.")
    r.add_argument("name")
    r.add_argument("--password-stdin", action="store_true", help="Read the new password from standard input.")
    d = add_command(us, "disable", cmd_users_disable, help="Disable an account (logs it out; its work is kept).")
    d.add_argument("name")
    e = add_command(us, "enable", cmd_users_enable, help="Enable a disabled account again.")
    e.add_argument("name")

    au = add_command(sub, "audit", cmd_audit, help="The audit log: logins, failed logins, shares, cancels, deletions.")
    au.add_argument("--limit", type=int, default=100, help="Newest N entries (default 100).")
    au.add_argument("--action", help="Only one kind, e.g. login-failed, cancel, share.")
    au.add_argument("--json", action="store_true")

    lim = add_command(sub, "limits", cmd_limits,
                      help="Show or set the fair queue's limits (everyone's, or one user's with --user).")
    lim.add_argument("--user", help="One user's limits (they win over everyone's).")
    lim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="max_running, max_queued, gpu_hours_per_day, job_wall_clock_s or share_weight; "
                          "VALUE 'none' for no limit (repeatable).")
    lim.add_argument("--classroom", action="store_true",
                     help="Everyone gets the classroom defaults (1 running, 10 waiting, 2 GPU-hours a day, 2 h a job).")
    lim.add_argument("--json", action="store_true")

    for name, on in (("share", True), ("unshare", False)):
        s = add_command(sub, name, cmd_share if on else cmd_unshare,
                        help=("Make a run or saved dataset visible to the class." if on else
                              "Make a shared run or dataset private again."))
        s.add_argument("id", help="Run id, or a saved dataset's name with --dataset.")
        s.add_argument("--dataset", action="store_true", help="ID names a saved dataset, not a run.")
        s.add_argument("--runs-dir", help="Where the run is (default $TUNESCOPE_HOME/runs).")


def _help_users(a: argparse.Namespace) -> int:
    return 0


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        print("Password (then Enter): ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _actor_name() -> str:
    from core.accounts import cli_actor

    return cli_actor().name


def _need_instructor() -> None:
    from core.accounts import cli_actor
    from core.workspace import require_instructor

    require_instructor(cli_actor(), "manage users, limits or the audit log (or the server's own account)")


def _print_new(accounts: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"name": n.user.name, "role": n.user.role, "password": n.password} for n in accounts],
                         indent=2))
        return
    print(table([{"name": n.user.name, "role": n.user.role,
                  "one-time password": n.password or "(as given)"} for n in accounts],
                ["name", "role", "one-time password"]))
    if any(n.password for n in accounts):
        print("\nHand these out once; each user picks a new password at the first login.", file=sys.stderr)


def cmd_users_add(a: argparse.Namespace) -> int:
    from core.accounts import add_user

    _need_instructor()
    password = _password_from_stdin() if a.password_stdin else None
    _print_new([add_user(a.name, a.role, password, by=_actor_name())], False)
    return 0


def cmd_users_import(a: argparse.Namespace) -> int:
    from core.accounts import import_roster

    _need_instructor()
    _print_new(import_roster(a.roster, role=a.role, by=_actor_name()), a.json)
    return 0


def cmd_users_list(a: argparse.Namespace) -> int:
    from core.accounts import list_users

    _need_instructor()
    users = list_users()
    if a.json:
        print(json.dumps([u.to_dict() for u in users], indent=2))
    elif not users:
        print("No accounts yet. Create the first instructor with: tunescope users add NAME --role instructor")
    else:
        print(table([{"name": u.name, "role": u.role, "state": "disabled" if u.disabled else "enabled",
                      "password": "one-time (not changed yet)" if u.must_change else "set",
                      "created": time.strftime("%Y-%m-%d", time.localtime(u.created))} for u in users],
                    ["name", "role", "state", "password", "created"]))
    return 0


def cmd_users_reset(a: argparse.Namespace) -> int:
    from core.accounts import reset_password

    _need_instructor()
    password = _password_from_stdin() if a.password_stdin else None
    _print_new([reset_password(a.name, password, by=_actor_name())], False)
    return 0


def cmd_users_disable(a: argparse.Namespace) -> int:
    from core.accounts import set_disabled

    _need_instructor()
    u = set_disabled(a.name, True, by=_actor_name())
    print(f"{u.name} disabled; their sessions ended and their work is kept.")
    return 0


def cmd_users_enable(a: argparse.Namespace) -> int:
    from core.accounts import set_disabled

    _need_instructor()
    u = set_disabled(a.name, False, by=_actor_name())
    print(f"{u.name} enabled.")
    return 0


def cmd_audit(a: argparse.Namespace) -> int:
    from core.accounts import open_accounts

    _need_instructor()
    rows = open_accounts().audit_log(limit=a.limit, action=a.action)
    if a.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    print(table([{"when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.at)), "who": r.actor,
                  "action": r.action, "target": r.target, "detail": r.detail, "client": r.client} for r in rows],
                ["when", "who", "action", "target", "detail", "client"]) if rows else "The audit log is empty.")
    return 0


def cmd_limits(a: argparse.Namespace) -> int:
    import dataclasses

    from core import jobs
    from core import workspace as ws
    from core.access import check_user_name
    from core.accounts import cli_actor
    from core.errors import ConfigError
    from core.jobs.fairshare import EVERYONE

    actor = cli_actor()
    if a.set or a.classroom:
        _need_instructor()
    if a.classroom:
        jobs.use_classroom_limits()
    who = check_user_name(a.user) if a.user else EVERYONE
    for item in a.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"{item!r} is not KEY=VALUE, e.g. max_running=2.")
        value = None if raw.strip().lower() in ("none", "") else raw.strip()
        ws.set_limit(actor, who, key.strip(), value)
    limits = dataclasses.asdict(ws.limits_for(actor, who) if a.user else jobs.open_store().get_limits().for_owner(None))
    if a.json:
        print(json.dumps(limits, indent=2))
    else:
        print(f"limits for {'everyone' if who == EVERYONE else who}:")
        for k, v in limits.items():
            print(f"  {k} = {'no limit' if v is None else v}")
    return 0


def _share(a: argparse.Namespace, on: bool) -> int:
    from pathlib import Path

    from core import workspace as ws
    from core.accounts import cli_actor

    actor = cli_actor()
    if a.dataset:
        ws.share_dataset(actor, a.id, on)
        what = f"dataset {a.id}"
    else:
        ws.share_run(actor, a.id, on, runs_dir=Path(a.runs_dir) if a.runs_dir else None)
        what = f"run {a.id}"
    print(f"{what} is now {'shared with the class' if on else 'private'}")
    return 0


def cmd_share(a: argparse.Namespace) -> int:
    return _share(a, True)


def cmd_unshare(a: argparse.Namespace) -> int:
    return _share(a, False)
