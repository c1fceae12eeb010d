"""`tunescope ui`: the Streamlit server and a supervised job worker, started and stopped together.

The worker is restarted when it dies (with a growing pause, so a worker that crashes at start does
not spin); when the server exits, or on Ctrl-C / SIGTERM, both are stopped — the worker first asks
its running jobs to checkpoint, and they resume the next time a worker starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
# The ASGI wrapper around APP that adds the sign-in addresses (/auth/session, /auth/logout).
SERVER = APP.with_name("server.py")

# The safe defaults of .streamlit/config.toml, passed as flags: an installed copy may be started from
# any directory, where Streamlit would not find that file. A test keeps the two in agreement.
SAFE_SETTINGS = {
    "server.headless": "true",
    "server.maxUploadSize": "200",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "viewer",
    "client.showErrorDetails": "false",
    "theme.base": "light",
    # Streamlit runs a full gc.collect(2) after every script run, fragment refreshes included: about
    # 60 ms holding the GIL with tunescope's modules loaded, so twenty sessions whose job lists
    # refresh every 2 s spent more than half a core on it. Python's own generational GC still runs.
    "runner.postScriptGC": "false",
}


@dataclass
class UiOptions:
    host: str = "127.0.0.1"
    port: int = 8501
    worker: bool = True
    gpus: str = "auto"
    worker_args: Sequence[str] = field(default_factory=tuple)
    ready_timeout_s: float = 60.0
    max_restart_pause_s: float = 30.0
    auth: str = ""  # "" (login unless on loopback), "login" (always), "off" (never: the no-auth option)

    def __post_init__(self) -> None:
        if self.auth not in ("", "login", "off"):
            raise ConfigError(f"Unknown login setting {self.auth!r}.")
        if not 1 <= int(self.port) <= 65535:
            raise ConfigError(f"--port must be between 1 and 65535, got {self.port}.")
        if not self.host:
            raise ConfigError("--host is empty; use 127.0.0.1 (this machine only) or 0.0.0.0 (the network).")


def streamlit_command(opts: UiOptions) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(SERVER), "--server.address", opts.host,
           "--server.port", str(opts.port)]
    for key, value in SAFE_SETTINGS.items():
        cmd += [f"--{key}", value]
    return cmd


def worker_command(opts: UiOptions) -> list[str]:
    return [sys.executable, "-m", "core.cli", "worker", "--gpus", opts.gpus, *opts.worker_args]


def check_login_setup(opts: UiOptions) -> str:
    """The dashboard's login mode for these options; refuses (ConfigError) to expose a server that
    nobody could log in to, or that everyone could use unasked."""
    from core.accounts import auth_mode, has_instructor, is_loopback

    mode = auth_mode(opts.host, opts.auth)
    if mode == "login" and not has_instructor():
        where = "with login" if is_loopback(opts.host) else "on the network"
        raise ConfigError(
            f"tunescope will not start {where} ({opts.host}) before an instructor account exists, or anyone who "
            "can reach it could see and change all work. Create one with: tunescope users add NAME --role "
            "instructor (then import the class with: tunescope users import roster.csv). To run without "
            "login anyway, add --no-auth.")
    if mode == "login":
        from core import jobs
        from core.access import make_private_dir
        from core.runs import tunescope_home

        make_private_dir(tunescope_home())  # other accounts on the machine: no reading students' work

        store = jobs.open_store()
        if not store.get_limits().rows:  # a class server starts fair; the instructor can change it
            jobs.use_classroom_limits(store)
            print("tunescope ui: classroom limits are on (1 running and 10 waiting jobs per user, 2 GPU-hours a "
                  "day, 2 h per job); see `tunescope limits`.", file=sys.stderr, flush=True)
    if mode == "open":
        print(f"tunescope ui: WARNING: --no-auth on {opts.host}: anyone who can reach this address can see, "
              "change and delete all work. Use it only on a network you trust.", file=sys.stderr, flush=True)
    return mode


def _env(role: str, auth: str = "") -> dict[str, str]:
    env = dict(os.environ)
    if auth:
        env["TUNESCOPE_AUTH"] = auth
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads must not spin against the trainer
    if role == "ui":  # predictions in the UI process; training keeps the other cores
        env.setdefault("OMP_NUM_THREADS", "1")
    root = str(APP.parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once Streamlit answers its health check; False if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def _stop(proc: subprocess.Popen[bytes] | None, name: str, grace: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"tunescope ui: {name} did not stop in {grace:.0f} s; killing it", file=sys.stderr, flush=True)
        proc.kill()
        proc.wait()


class Supervisor:
    """Owns the two child processes; `run()` blocks until the server exits or a signal arrives."""

    def __init__(self, opts: UiOptions) -> None:
        self.opts = opts
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_starts = 0
        self._stopping = False
        self._next_worker_start = 0.0

    def _start_worker(self) -> None:
        self.worker = subprocess.Popen(worker_command(self.opts), env=_env("worker"))
        self.worker_starts += 1

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _check_worker(self) -> None:
        if not self.opts.worker or self.worker is None or self.worker.poll() is None:
            return
        now = time.monotonic()
        if self._next_worker_start == 0.0:
            pause = min(self.opts.max_restart_pause_s, 2.0 ** min(self.worker_starts - 1, 5))
            print(f"tunescope ui: the worker exited (code {self.worker.returncode}); restarting it in "
                  f"{pause:.0f} s", file=sys.stderr, flush=True)
            self._next_worker_start = now + pause
        elif now >= self._next_worker_start:
            self._next_worker_start = 0.0
            self._start_worker()

    def run(self) -> int:
        url = f"http://{'127.0.0.1' if self.opts.host in ('0.0.0.0', '::') else self.opts.host}:{self.opts.port}"
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.opts.worker:
                self._start_worker()
            self.server = subprocess.Popen(streamlit_command(self.opts), env=_env("ui", self.opts.auth))
            if not wait_ready(url, self.server, self.opts.ready_timeout_s):
                if self._stopping:
                    return 0
                print(f"tunescope ui: the dashboard did not start on {self.opts.host}:{self.opts.port} (is the "
                      "port taken? try --port 8502)", file=sys.stderr, flush=True)
                return 1
            worker = f"worker pid {self.worker.pid}" if self.worker else "no worker (--no-worker)"
            print(f"tunescope dashboard: {url}  ({worker}; Ctrl-C stops both)", flush=True)
            while not self._stopping:
                code = self.server.poll()
                if code is not None:
                    return code
                self._check_worker()
                time.sleep(0.5)
            return 0
        finally:
            _stop(self.server, "the dashboard", 10)
            _stop(self.worker, "the worker", 45)  # running jobs checkpoint first
            for s, h in old.items():
                signal.signal(s, h)


def serve(opts: UiOptions) -> int:
    check_login_setup(opts)
    return Supervisor(opts).run()
