"""`tunescope ui`: server and worker start together, the worker is restarted when it dies, and
both stop with the launcher."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tomllib

from core.errors import ConfigError
from core.launcher import SAFE_SETTINGS, UiOptions, streamlit_command, worker_command

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flags_match_streamlit_config_file() -> None:
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    for key, value in SAFE_SETTINGS.items():
        section, name = key.split(".")
        expected = cfg[section][name]
        expected = str(expected).lower() if isinstance(expected, bool) else str(expected)
        assert value == expected, key
    assert cfg["server"]["address"] == "127.0.0.1"


def test_commands_and_options() -> None:
    opts = UiOptions(host="0.0.0.0", port=8600, gpus="cpu")
    cmd = streamlit_command(opts)
    assert cmd[cmd.index("--server.port") + 1] == "8600" and cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert worker_command(opts)[-3:] == ["worker", "--gpus", "cpu"]
    with pytest.raises(ConfigError, match="port"):
        UiOptions(port=70000)


def _workers(home: Path) -> list[dict]:
    from core import jobs

    return jobs.live_workers(jobs.open_store(f"sqlite:///{home / 'jobs.db'}"))


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_ui_starts_supervises_and_stops(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = {**os.environ, "TUNESCOPE_HOME": str(home)}
    env.pop("TUNESCOPE_JOBS_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "ui", "--port", str(port), "--gpus", "cpu"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = _wait(lambda: (lambda s: s if "tunescope dashboard:" in s else None)(proc.stdout.readline()),
                     90, "the dashboard address")
        assert f"http://127.0.0.1:{port}" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.read() == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"<html" in r.read().lower()
        first = _wait(lambda: _workers(home), 60, "the worker to register")
        os.kill(first[0]["pid"], signal.SIGKILL)  # a crash: the launcher must start a new one
        second = _wait(lambda: [w for w in _workers(home) if w["pid"] != first[0]["pid"]], 60, "a restarted worker")
        pids = {first[0]["pid"], second[0]["pid"]}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        for pid in pids - {first[0]["pid"]}:
            _wait(lambda pid=pid: not Path(f"/proc/{pid}").exists() or
                  Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", 30, f"worker {pid} to exit")
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
