"""Accounts: hashing, users and rosters, the login flow (rate limit, tickets, tokens), the audit log
and the user commands."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PASSWORD

from core import accounts
from core.accounts import sessions
from core.accounts.passwords import hash_password, one_time_password, verify_password
from core.errors import ConfigError


def test_hashes_are_argon2id_salted_and_never_the_password(fast_hashing: None) -> None:
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a.startswith("$argon2id$") and a != b and "s3cret-pass" not in a
    assert verify_password(a, "s3cret-pass") and not verify_password(a, "s3cret-pasS")
    assert not verify_password(None, "anything") and not verify_password("not a hash", "x")


def test_default_hasher_is_memory_hard() -> None:
    from core.accounts.passwords import HASHER

    assert HASHER.memory_cost >= 19 * 1024 and HASHER.time_cost >= 2  # OWASP's Argon2id floor


def test_one_time_passwords_are_random_and_readable() -> None:
    got = {one_time_password() for _ in range(50)}
    assert len(got) == 50
    assert all(len(p) == 14 and not set(p) & set("01ilo") for p in got)


def test_add_user_stores_only_a_hash_and_refuses_bad_names(home: Path, fast_hashing: None) -> None:
    new = accounts.add_user("ann", "student")
    assert new.password and new.user.must_change
    db = sqlite3.connect(home / "jobs.db")
    (stored,) = db.execute("SELECT pw_hash FROM users WHERE name = 'ann'").fetchone()
    assert new.password not in stored and stored.startswith("$argon2id$")
    dump = "\n".join(db.iterdump())
    assert new.password not in dump
    for bad in ("../etc", "a/b", "<b>x</b>", "Ann Smith", "", "-rf", "x" * 40, "a..b"):
        with pytest.raises(ConfigError):
            accounts.add_user(bad, "student")
    with pytest.raises(ConfigError, match="exists already"):
        accounts.add_user("ann", "student")
    with pytest.raises(ConfigError, match="role"):
        accounts.add_user("zed", "admin")
    with pytest.raises(ConfigError, match="too short"):
        accounts.add_user("zed", "student", "short")
    assert [u.name for u in accounts.list_users()] == ["ann"]


def test_roster_import_is_all_or_nothing_and_names_the_bad_line(home: Path, fast_hashing: None, tmp_path: Path
                                                                 ) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Role\nann,student\nbob,\ncarol,viewer\n<script>,student\n")
    with pytest.raises(ConfigError, match="Roster line 5") as err:
        accounts.import_roster(roster)
    assert "Nothing was imported" in str(err.value)
    assert accounts.list_users() == []
    roster.write_text("Name,Role\nann,student\nbob,\ncarol,viewer\n")
    made = accounts.import_roster(roster)
    assert [(n.user.name, n.user.role) for n in made] == [("ann", "student"), ("bob", "student"), ("carol", "viewer")]
    assert all(n.password and n.user.must_change for n in made)
    with pytest.raises(ConfigError, match="exists already"):
        accounts.import_roster(roster)


def test_login_ticket_session_logout(classroom: dict) -> None:
    result = accounts.login("Ann ", PASSWORD, "10.0.0.5")  # names are case- and space-insensitive
    token, max_age = accounts.redeem(result.ticket, "10.0.0.5")
    assert max_age == sessions.SESSION_DAYS * 86400
    assert accounts.user_for(token).name == "ann"
    assert accounts.redeem(result.ticket) is None  # one use only
    assert accounts.logout(token) == "ann"
    assert accounts.user_for(token) is None
    actions = [e.action for e in accounts.open_accounts().audit_log()]
    assert actions[:2] == ["logout", "login"]


def test_tickets_expire_and_tokens_expire(classroom: dict) -> None:
    result = accounts.login("ann", PASSWORD)
    assert accounts.redeem(result.ticket, now=time.time() + sessions.TICKET_TTL_S + 1) is None
    token, _ = accounts.redeem(accounts.login("ann", PASSWORD).ticket)
    assert accounts.user_for(token, now=time.time() + sessions.SESSION_DAYS * 86400 + 5) is None


def test_a_session_survives_a_restart_but_not_a_reset_or_disable(classroom: dict) -> None:
    token, _ = accounts.redeem(accounts.login("bob", PASSWORD).ticket)
    # A "restart": fresh store objects over the same files find the session and the same key.
    from core.accounts import store as account_store
    from core.jobs import store as job_store

    job_store._STORES.clear()
    account_store._ACCOUNT_STORES.clear()
    assert accounts.user_for(token).name == "bob"
    accounts.reset_password("bob", by="teach")
    assert accounts.user_for(token) is None
    with pytest.raises(accounts.LoginRefused):  # the reset replaced the password with a one-time one
        accounts.login("bob", PASSWORD)


def test_disabled_accounts_cannot_log_in_and_lose_their_sessions(classroom: dict) -> None:
    token, _ = accounts.redeem(accounts.login("ann", PASSWORD).ticket)
    accounts.set_disabled("ann", True, by="teach")
    assert accounts.user_for(token) is None
    with pytest.raises(accounts.LoginRefused, match="disabled"):
        accounts.login("ann", PASSWORD)
    accounts.set_disabled("ann", False, by="teach")
    assert accounts.login("ann", PASSWORD).user.name == "ann"


def test_wrong_passwords_are_rate_limited_per_account_and_per_client(classroom: dict,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESCOPE_LOGIN_LOCK_S", "30")
    t0 = time.time()
    for i in range(sessions.MAX_FAILURES):
        with pytest.raises(accounts.LoginRefused, match="Wrong user name or password"):
            accounts.login("ann", "nope", f"10.0.0.{i}", now=t0 + i)
    with pytest.raises(accounts.LoginRefused, match=r"try again in \d+ s") as err:
        accounts.login("ann", PASSWORD, "10.9.9.9", now=t0 + 5)  # even the right one, from anywhere
    assert 20 < err.value.wait_s <= 30
    assert accounts.login("ann", PASSWORD, "10.9.9.9", now=t0 + 40).user.name == "ann"  # after the pause
    # Per client: one address guessing at many accounts is paused too, after more tries than one account
    # gets (a class behind one NAT address must not lock itself out with a few typos).
    names = ["bob", "vic", "teach", "nobody", "zed"] * 5
    for i, name in enumerate(names[:sessions.MAX_FAILURES_PER_CLIENT]):
        with pytest.raises(accounts.LoginRefused, match="Wrong user name"):
            accounts.login(f"{name}{i}", "nope", "10.6.6.6", now=t0 + 100 + i)
    with pytest.raises(accounts.LoginRefused, match="try again"):
        accounts.login("vic", PASSWORD, "10.6.6.6", now=t0 + 126)
    assert accounts.login("vic", PASSWORD, "10.7.7.7", now=t0 + 126).user.name == "vic"


def test_wait_after_doubles_and_is_capped() -> None:
    f = [100.0 + i for i in range(5)]
    assert sessions.wait_after(f[:4], 105.0, base_s=30) == 0
    assert sessions.wait_after(f, 104.0, base_s=30) == 30
    assert sessions.wait_after([*f, 105.0], 105.0, base_s=30) == 60
    assert sessions.wait_after([100.0 + i for i in range(30)], 129.0, base_s=30) == sessions.LOCK_MAX_S


def test_the_audit_log_is_append_only(classroom: dict, home: Path) -> None:
    accounts.open_accounts().audit("teach", "cancel", "job:x")
    db = sqlite3.connect(home / "jobs.db")
    for sql in ("UPDATE audit SET actor = 'nobody'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert [e.action for e in accounts.open_accounts().audit_log()][0] == "cancel"


def test_the_signing_key_is_private(classroom: dict, home: Path) -> None:
    sessions.secret_key()
    mode = stat.S_IMODE((home / "secret.key").stat().st_mode)
    assert mode == 0o600


def test_change_password_needs_the_current_one(classroom: dict) -> None:
    with pytest.raises(ConfigError, match="current password is wrong"):
        accounts.change_password("ann", "nope", "a brand new one")
    with pytest.raises(ConfigError, match="too short"):
        accounts.change_password("ann", PASSWORD, "short")
    accounts.change_password("ann", PASSWORD, "a brand new one")
    with pytest.raises(accounts.LoginRefused):
        accounts.login("ann", PASSWORD)
    assert accounts.login("ann", "a brand new one").user.name == "ann"


def test_auth_mode() -> None:
    assert accounts.auth_mode("127.0.0.1", "") == "local"
    assert accounts.auth_mode("localhost", "") == "local"
    assert accounts.auth_mode("::1", "") == "local"
    assert accounts.auth_mode("0.0.0.0", "") == "login"
    assert accounts.auth_mode("192.168.1.10", "") == "login"
    assert accounts.auth_mode("classroom.example.org", "") == "login"
    assert accounts.auth_mode("0.0.0.0", "off") == "open"
    assert accounts.auth_mode("127.0.0.1", "login") == "login"


def _cli(*args: str, home: Path, stdin: str | None = None, env: dict | None = None
         ) -> subprocess.CompletedProcess[str]:
    import os

    e = {**os.environ, "TUNESCOPE_HOME": str(home), **(env or {})}
    e.pop("TUNESCOPE_USER", None) if not env or "TUNESCOPE_USER" not in env else None
    return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, capture_output=True, text=True,
                          env=e, timeout=120)


def test_users_commands_end_to_end(home: Path, tmp_path: Path) -> None:
    out = _cli("users", "add", "teach", "--role", "instructor", "--password-stdin", home=home,
               stdin="a long secret\n")
    assert out.returncode == 0, out.stderr
    assert "a long secret" not in out.stdout + out.stderr
    roster = tmp_path / "class.csv"
    roster.write_text("name\nann\nbob\n")
    out = _cli("users", "import", str(roster), "--json", home=home)
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert [m["name"] for m in made] == ["ann", "bob"] and all(m["password"] for m in made)
    listed = json.loads(_cli("users", "list", "--json", home=home).stdout)
    assert {u["name"]: u["must_change"] for u in listed} == {"ann": True, "bob": True, "teach": False}
    assert _cli("users", "disable", "bob", home=home).returncode == 0
    reset = _cli("users", "reset", "ann", home=home)
    assert reset.returncode == 0 and made[0]["password"] not in reset.stdout
    # A student cannot manage users, whatever the command.
    student = _cli("users", "add", "mallory", "--role", "instructor", home=home, env={"TUNESCOPE_USER": "ann"})
    assert student.returncode == 2 and "Only an instructor" in student.stderr
    audit = _cli("audit", "--json", home=home)
    actions = [e["action"] for e in json.loads(audit.stdout)]
    assert {"user-add", "user-disable", "user-reset"} <= set(actions)
    assert _cli("users", "add", "../x", home=home).returncode == 2


def test_ui_refuses_a_network_address_without_an_instructor(home: Path) -> None:
    out = _cli("ui", "--host", "0.0.0.0", "--port", "8799", "--no-worker", home=home)
    assert out.returncode == 2
    assert "tunescope users add NAME --role instructor" in out.stderr and "--no-auth" in out.stderr
    out = _cli("ui", "--host", "127.0.0.1", "--auth", "--port", "8799", "--no-worker", home=home)
    assert out.returncode == 2 and "instructor" in out.stderr
