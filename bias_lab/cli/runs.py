"""``bias-lab runs list|show|delete``: browse the run store."""

from __future__ import annotations

from ..store import STATUSES, RunStore
from ..run_labels import describe
from .common import add_actions, positive, print_json, print_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list, show and delete stored runs",
                                   description="The run store: every run of every command (and of the app), its "
                                               "config, status, summary and folder.")
    actions = add_actions(parser)

    listing = actions.add_parser("list", help="list runs, newest first")
    listing.add_argument("--kind", help="only runs of this kind: ig2 (neurons attribute), heads (heads score), "
                                              "head-importance, prune (masks train), debias, evaluate")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--model", help="only runs of this model")
    listing.add_argument("--limit", type=int, help="at most this many runs")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_runs)

    show = actions.add_parser("show", help="show one run: config, status, summary, provenance")
    show.add_argument("run", help="run id or its artifact folder")
    show.set_defaults(handler=show_run)

    delete = actions.add_parser("delete", help="delete a run and its artifact folder")
    delete.add_argument("run", help="run id or its artifact folder")
    delete.add_argument("--keep-artifacts", action="store_true", help="remove only the index entry")
    delete.set_defaults(handler=delete_run)


def list_runs(args) -> int:
    positive(args, "limit")
    records = RunStore().list(kind=args.kind, status=args.status, model=args.model, limit=args.limit)
    if args.json:
        print_json([record.to_dict() for record in records])
    elif not records:
        print("no runs")
    else:
        rows = [dict(record.to_dict(), what=describe(record)) for record in records]
        print_table(rows, ["id", "kind", "model", "status", "created_at", "what"])
    return 0


def show_run(args) -> int:
    print_json(RunStore().get(args.run).to_dict())
    return 0


def delete_run(args) -> int:
    record = RunStore().delete(args.run, keep_artifacts=args.keep_artifacts)
    print(f"deleted run {record.id}" + ("" if args.keep_artifacts else f" and {record.artifact_dir}"))
    return 0
