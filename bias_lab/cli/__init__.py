"""The ``bias-lab`` command line: one subcommand per capability.

Each subcommand module exposes ``register(subparsers)``; the parser it adds sets ``handler`` to a
function taking the parsed arguments and returning an exit code. Library errors (``BiasLabError``)
and bad arguments print one line to stderr and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from ..errors import BiasLabError, Cancelled
from . import evaluate, heads, ig2, info, model_info, prune, runs

SUBCOMMANDS = (info, model_info, runs, ig2, evaluate, heads, prune)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 — argparse's own usage dump is noise here
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bias-lab", description="Find and switch off social bias inside transformer language models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BiasLabError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Cancelled):
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as error:  # an unexpected failure: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
        return 1
