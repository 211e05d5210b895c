"""``bias-lab model-info``: load a model and print the facts the app shows."""

from __future__ import annotations

from .common import add_model_arguments, model_from_args, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("model-info", help="load a model and print its layers, heads, FFN width, memory")
    add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    summary = model_from_args(args).summary()
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:<12} {value}")
    return 0
