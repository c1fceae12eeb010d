"""`tunescope` command line: `main()` (the `core.cli:main` entry point) and the parser it builds.

One module per command group, each with `add_commands(subparsers)` that adds its sub-commands and
sets their handlers: `train` (train, predict, eval, runs, demo-data), `jobs` (submit, jobs, status,
cancel, logs, worker, db), `ui`, `explain`, `report`, `export`, `users` (users, audit, share,
unshare); `common` holds what they share (the
one-line-error parser, the config flags, tables). A new group is one module, imported below and
listed in `GROUPS`; a module that is missing fails the import instead of dropping its commands.

Handlers parse, call the library, print: they may import `core.api` and the feature packages
(`core.jobs`, `core.explain`, `core.report`, `core.runs` ...), and nothing in `core` imports
`core.cli`. Anything a library user would also need belongs in the library, not here. Heavy
libraries (torch and what pulls it in) are imported inside handlers so `--help` stays quick.

Errors caused by input (`TunescopeError`) exit with code 2 and one line on stderr; `--debug` shows
the traceback. Progress goes to stderr so stdout stays parseable: `train` prints the run directory as
its last stdout line, `predict`/`eval` print JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence

from core.cli import explain, export, jobs, report, train, ui, users
from core.cli.common import EXIT_USAGE, Parser, config_from_args
from core.errors import TunescopeError

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_USAGE", "build_parser", "config_from_args", "main"]

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as for `yes | head`

# In the order `tunescope --help` lists them.
GROUPS = (train, jobs, ui, explain, report, export, users)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tunescope", description="Fine-tune, compare and explain classifiers.")
    parser.add_argument("--debug", action="store_true", help="Show full tracebacks on errors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = build_parser().parse_args([x for x in argv if x != "--debug"])
    args.debug = debug
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a reader that went away fails here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        # `tunescope predict ... | head`: the reader has all it wanted. Point stdout at /dev/null so
        # the interpreter's final flush stays quiet, and exit the way a process killed by SIGPIPE does.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except TunescopeError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"tunescope: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tunescope: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: say so briefly; --debug has the details
        if args.debug:
            raise
        print(f"tunescope: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1

