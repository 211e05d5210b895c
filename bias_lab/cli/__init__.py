"""The ``bias-lab`` command line, grouped by method as the library is:

    bias-lab neurons attribute|select|verify|compare   the bias-neuron method (IG2 + BNS)
    bias-lab heads score|select|importance|tradeoff    attention heads
    bias-lab masks train|info|evaluate                 pruning masks
    bias-lab evaluate BENCHMARK                        any benchmark of ``bias_lab.metrics.BENCHMARKS``
    bias-lab distill, compare-models                   compression: distil a student, compare models
    bias-lab sweep SWEEP.yaml | status RUN             a grid of runs, here or on a Ray cluster
    bias-lab glue, bias-model, challenge               masks' performance: GLUE, the bias model, challenge sets
    bias-lab runs list|show|delete|export|import, info, model-info

Each module exposes ``register(subparsers)``; every parser it adds sets ``handler`` to a function
taking the parsed arguments and returning an exit code (a group without an action exits 2 naming
its actions). Commands that create a run take ``--out`` as the run folder and leave writing it to
the library. Library errors (``BiasLabError``) and bad arguments print one line to stderr and exit
2; ``--debug`` (before or after the subcommand) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback

from ..allocator import reuse_freed_buffers
from ..errors import BiasLabError, Cancelled
from . import evaluate, heads, info, masks, model_info, neurons, runs
from . import compare_models, distill
from . import sweep
from . import bias_model, challenge, glue

SUBCOMMANDS = (neurons, heads, masks, evaluate, distill, compare_models, sweep, glue, bias_model, challenge, runs, info,
               model_info)

# Run-config keys stored under another name than the flag that sets them (the app stores the same
# keys, so the CLI and the app resume each other's runs).
CONFIG_FLAGS = {"prompts_file": "--data", "corpus": "--data"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 — argparse's own usage dump is noise here
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("bias-lab")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(dict.fromkeys(action.choices.values()))  # aliases map to the same parser
    return found


def _add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--debug` is accepted after the subcommand too. SUPPRESS keeps a subcommand's default from
    overwriting a `--debug` given before it (argparse copies subparser defaults over the namespace)."""
    for sub in _subparsers(parser):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")
        _add_debug_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bias-lab", description="Find and switch off social bias inside transformer language models.",
                     epilog="`bias-lab COMMAND --help` describes each command and its actions.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"bias-lab {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_Parser)
    subparsers.required = True
    for module in SUBCOMMANDS:
        module.register(subparsers)
    _add_debug_everywhere(parser)
    return parser


def _chosen_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The (sub)parser whose options the user typed, e.g. that of `heads select`."""
    for dest in ("command", "action"):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and getattr(args, dest, None) in action.choices:
                parser = action.choices[getattr(args, dest)]
                break
    return parser


def _with_flag_names(message: str, parser: argparse.ArgumentParser) -> str:
    """A resume conflict names the run config's key ('perf_data'); say the flag the user typed."""
    flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions if action.option_strings}
    flags = {**{key: flag for key, flag in CONFIG_FLAGS.items() if flag.lstrip("-").replace("-", "_") in flags}, **flags}
    return re.sub(r"another config \('(\w+)'",
                  lambda match: f"another config ({flags[match.group(1)]}" if match.group(1) in flags else match.group(0),
                  message)


def _quiet_broken_pipe() -> int:
    """The reader went away (`bias-lab runs list | head -1`): stop without a traceback. Later writes,
    including the interpreter's final flush, go to /dev/null instead of raising again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (e.g. captured by a test)
        pass
    return 141  # 128 + SIGPIPE, as for any command a closed pipe stops


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the subcommand that was typed, whose --help lists what it takes
        _chosen_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    reuse_freed_buffers()  # a command is a compute process: see bias_lab.allocator
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except BiasLabError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {_with_flag_names(str(error), _chosen_parser(parser, args))}", file=sys.stderr)
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
