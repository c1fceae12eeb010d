"""The security corpus of the classroom server: tampered and expired session tokens, forged owners,
path-like and markup user and dataset names, other people's ids in URLs and CLI flags, and
over-quota submissions. Each case must be refused with a clear message and leave every stored
file and table row as it was (the audit log and the failed-login table excepted: they record it)."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PASSWORD

from core import accounts
from core import workspace as ws
from core.access import Actor
from core.accounts import sessions
from core.config import DataConfig, RunConfig
from core.errors import TunescopeError
from core.jobs import JobSpec, enqueue, open_store, use_classroom_limits

ANN, BOB = Actor("ann", "student"), Actor("bob", "student")
BOB_RUN = "20260101-000003-bob-private"
LOGGED = {"audit", "login_failures", "sqlite_sequence"}


def snapshot(home: Path) -> dict[str, object]:
    """Every file's hash (the database files aside) and every row of every table but the logs."""
    files = {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(home.rglob("*")) if p.is_file() and not p.name.startswith("jobs.db")
             and p.suffix != ".log"}
    db = sqlite3.connect(home / "jobs.db")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = {t: sorted(map(repr, db.execute(f"SELECT * FROM {t}"))) for t in tables if t not in LOGGED}
    return {"files": files, "rows": rows}


@pytest.fixture
def world(classroom: dict, home: Path) -> dict:
    store = open_store()
    bob_job = enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="bob", store=store)[0]
    token, _ = accounts.redeem(accounts.login("ann", PASSWORD).ticket)
    return {"bob_job": bob_job, "token": token, "home": home}


def refused(world: dict, call, match: str) -> None:  # noqa: ANN001
    before = snapshot(world["home"])
    with pytest.raises(TunescopeError, match=match):
        call()
    assert snapshot(world["home"]) == before


# -- session tokens (the cookie) ------------------------------------------------------------------


def _flip(text: str, i: int) -> str:
    return text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1:]


TOKEN_CASES = {
    "mac flipped": lambda t: _flip(t, len(t) - 1),
    "session id flipped": lambda t: _flip(t, 0),
    "expiry pushed out, same mac": lambda t: t.split(".")[0] + ".9999999999." + t.split(".")[2],
    "no mac": lambda t: ".".join(t.split(".")[:2]),
    "signed with another key": lambda t: "{}.{}.".format(*t.split(".")[:2]) + hmac.new(
        b"k" * 32, ".".join(t.split(".")[:2]).encode(), hashlib.sha256).hexdigest(),
    "empty": lambda t: "",
    "huge": lambda t: t * 200,
    "sql": lambda t: "' OR 1=1 --",
    "bytes": lambda t: t.encode(),
    "upper-case hex": lambda t: t.upper(),
}


@pytest.mark.parametrize("case", list(TOKEN_CASES))
def test_tampered_tokens_are_nobody(world: dict, case: str) -> None:
    before = snapshot(world["home"])
    assert accounts.user_for(TOKEN_CASES[case](world["token"])) is None
    assert accounts.user_for(world["token"]).name == "ann"  # the real one still works
    assert snapshot(world["home"]) == before


def test_an_expired_token_is_nobody(world: dict) -> None:
    assert accounts.user_for(world["token"], now=time.time() + sessions.SESSION_DAYS * 86400 + 1) is None


def test_a_logged_out_token_is_nobody(world: dict) -> None:
    accounts.logout(world["token"])
    assert accounts.user_for(world["token"]) is None


# -- forged owners ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["owner", "shared", "user"])
def test_a_config_that_names_an_owner_is_refused(world: dict, key: str) -> None:
    refused(world, lambda: RunConfig.from_dict({key: "bob", "data": {"source": "demo:sentiment"}}),
            "cannot say who owns the work")


def test_a_config_section_with_an_owner_is_refused(world: dict) -> None:
    refused(world, lambda: RunConfig.from_dict({"data": {"source": "demo:sentiment", "owner": "bob"}}),
            "Unknown DataConfig field")


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../teach", "a/b", "/etc/passwd", "..", "x\x00y", "ann%2f..", "<b>x</b>",
                                  "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "-rf", "ann smith"])
def test_path_like_and_markup_user_names_are_refused(world: dict, name: str) -> None:
    refused(world, lambda: accounts.add_user(name, "student", PASSWORD), "User name .* is not allowed")


@pytest.mark.parametrize("name", ["<script>", "../x", "a/b", "**bold**", ""])
def test_markup_and_path_dataset_names_are_refused(world: dict, name: str, sentiment_csv: Path) -> None:
    refused(world, lambda: ws.save_dataset(ANN, name, sentiment_csv), "not allowed|not found")


def test_a_login_with_a_markup_name_says_only_wrong_name_or_password(world: dict) -> None:
    refused(world, lambda: accounts.login("<img src=x onerror=alert(1)>", "x"), r"^Wrong user name or password\.$")


# -- other people's ids ----------------------------------------------------------------------------


def test_another_users_staged_upload_cannot_be_saved_or_trained_on(world: dict, home: Path) -> None:
    from core.data.store import stage_upload

    staged = stage_upload(ws.upload_folder(BOB, "0123456789abcdef"), "b.csv", b"text,label\nhi,pos\n")
    refused(world, lambda: ws.save_dataset(ANN, "stolen", staged), "not found")
    refused(world, lambda: ws.submit_training(ANN, RunConfig(data=DataConfig(source=str(staged))),
                                              check_device=False), "not found")


def _cli(world: dict, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUNESCOPE_HOME": str(world["home"]), "TUNESCOPE_USER": "ann"}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("args,match", [
    (("export", "--run", BOB_RUN, "--out", "x"), "not found"),
    (("report", "--runs", BOB_RUN, "--out", "r.html"), "not found"),
    (("predict", "--run", BOB_RUN, "--text", "hi"), "not found"),
    (("share", BOB_RUN), "not found"),
    (("unshare", BOB_RUN), "not found"),
    (("cancel", "{bob_job}"), "No job"),
    (("logs", "{bob_job}"), "No job"),
    (("status", "{bob_job}"), "No job"),
    (("submit", "--data", "demo:sentiment", "--owner", "bob"), "Only an instructor"),
    (("users", "reset", "bob"), "Only an instructor"),
    (("limits", "--set", "max_running=9"), "Only an instructor"),
])
def test_another_users_ids_in_cli_flags_are_refused(world: dict, args: tuple, match: str) -> None:
    before = snapshot(world["home"])
    out = _cli(world, *[a.format(**world) for a in args])
    assert out.returncode == 2 and match in out.stderr, out.stderr
    assert snapshot(world["home"]) == before


def test_runs_lists_only_what_the_user_may_read(world: dict) -> None:
    out = _cli(world, "runs", "--json")
    assert out.returncode == 0
    assert BOB_RUN not in out.stdout and "ann-private" in out.stdout and "ann-shared" in out.stdout


# -- over quota ------------------------------------------------------------------------------------


def test_an_over_quota_submission_is_refused_and_stores_nothing(world: dict) -> None:
    store = open_store()
    use_classroom_limits(store)
    enqueue([JobSpec(config={"steps": 1}) for _ in range(10)], kind="noop", owner="ann", store=store)
    refused(world, lambda: enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="ann", store=store),
            "waiting")
    refused(world, lambda: ws.submit_training(ANN, RunConfig(data=DataConfig(source="demo:sentiment",
                                                                              max_samples=200)),
                                              check_device=False), "waiting")


def test_a_user_over_their_daily_gpu_hours_is_refused(world: dict) -> None:
    store = open_store()
    use_classroom_limits(store)
    store.set_limit("bob", "gpu_hours_per_day", 0.0)
    refused(world, lambda: enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="bob", store=store),
            "GPU")


def test_uploads_runs_and_saved_datasets_are_private_to_the_server_account(home: Path, sentiment_csv: Path) -> None:
    import stat

    from core.data.store import save_dataset, stage_upload
    from core.runs import RunWriter

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    staged = stage_upload("0123456789abcdef@ann", "a.csv", sentiment_csv.read_bytes())
    assert mode(staged) == 0o600 and mode(staged.parent) == 0o700 and mode(staged.parent.parent) == 0o700
    assert mode(RunWriter.create(home / "runs", "20260101-000000-x").path) == 0o700
    saved = Path(save_dataset("mine", staged, owner="ann").path).parent
    assert mode(saved) == 0o700 and mode(saved / "access.json") == 0o600


@pytest.mark.parametrize("name", ["local", "ui-0123456789abcdef", "bob.", ".bob", "a..b"])
def test_reserved_and_badly_dotted_account_names_are_refused(world: dict, name: str) -> None:
    refused(world, lambda: accounts.add_user(name, "student", PASSWORD), "reserved|not allowed")


def test_a_password_change_ends_the_other_sessions_but_not_this_one(world: dict) -> None:
    other, _ = accounts.redeem(accounts.login("ann", PASSWORD).ticket)
    accounts.change_password("ann", PASSWORD, "a brand new one", keep_token=world["token"])
    assert accounts.user_for(world["token"]).name == "ann" and accounts.user_for(other) is None


def test_a_ticket_from_before_a_reset_opens_nothing(world: dict) -> None:
    ticket = accounts.login("bob", PASSWORD).ticket
    accounts.reset_password("bob", by="teach")
    assert accounts.redeem(ticket) is None


@pytest.mark.parametrize("model", ["{home}/runs/20260101-000003-bob-private", "/etc", "./somewhere", "~/x",
                                   "{home}/runs/20260101-000009-none"])
def test_a_student_cannot_start_from_a_folder_they_may_not_read(world: dict, model: str) -> None:
    from core.config import ModelConfig

    missing = "/nowhere/at/all"
    with pytest.raises(TunescopeError) as gone:
        ws.submit_training(ANN, RunConfig(model=ModelConfig(name=missing)), check_device=False)
    name = model.format(home=world["home"])
    refused(world, lambda: ws.submit_training(ANN, RunConfig(
        data=DataConfig(source="demo:sentiment", max_samples=200), model=ModelConfig(name=name)),
        check_device=False), "not an existing folder")
    try:
        ws.submit_training(ANN, RunConfig(model=ModelConfig(name=name)), check_device=False)
    except TunescopeError as exc:  # exactly the words a folder that does not exist gets
        assert str(exc).replace(repr(name[:100]), "X") == str(gone.value).replace(repr(missing), "X")


def test_a_viewer_queues_no_explanations_and_students_choose_no_run_folder(world: dict) -> None:
    refused(world, lambda: ws.submit_job(Actor("vic", "viewer"), {"run": BOB_RUN}, kind="explain"), "viewer")
    cfg = RunConfig(data=DataConfig(source="demo:sentiment", max_samples=200))
    (job_id,) = ws.submit_training(ANN, cfg, check_device=False, run_id=BOB_RUN)
    assert open_store().get(job_id).run_id != BOB_RUN


def test_throttled_logins_do_not_grow_the_audit_log(world: dict) -> None:
    t0 = time.time()
    for i in range(5):
        with pytest.raises(accounts.LoginRefused):
            accounts.login("bob", "nope", "", now=t0 + i)
    before = len(accounts.open_accounts().audit_log(limit=None))
    for _ in range(20):
        with pytest.raises(accounts.LoginRefused, match="try again"):
            accounts.login("bob", PASSWORD, "", now=t0 + 6)
    assert len(accounts.open_accounts().audit_log(limit=None)) == before
