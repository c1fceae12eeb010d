"""`tunescope ui`: the dashboard plus a supervised worker (see core.launcher)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.common import add_command


def add_commands(sub: Any) -> None:
    p = add_command(sub, "ui", cmd_ui,
                    help="Start the dashboard and a job worker; open the printed address in a browser.")
    p.add_argument("--host", default="127.0.0.1",
                   help="Address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for a classroom LAN, "
                        "which needs an instructor account first).")
    p.add_argument("--port", type=int, default=8501, help="Port (default 8501).")
    p.add_argument("--no-worker", action="store_true",
                   help="Do not start a worker (one already runs, e.g. `tunescope worker` on a GPU host).")
    p.add_argument("--gpus", default="auto", help="Passed to the worker: auto, cpu, or indices like 0,1.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--auth", action="store_true",
                      help="Ask for a login even on 127.0.0.1 (e.g. behind a reverse proxy). On any other address "
                           "login is on by default.")
    mode.add_argument("--no-auth", action="store_true",
                      help="No login even on a network address (prints a warning; every page shows a banner).")


def cmd_ui(a: argparse.Namespace) -> int:
    from core.launcher import UiOptions, serve

    auth = "login" if a.auth else "off" if a.no_auth else ""
    return serve(UiOptions(host=a.host, port=a.port, worker=not a.no_worker, gpus=a.gpus, auth=auth))
