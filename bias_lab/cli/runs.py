"""``bias-lab runs list|show|delete|export|import``: browse the run store, carry runs between machines."""

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
                                              "head-importance, prune (masks train), debias, evaluate, "
                                              "distill, compare-models, sweep (bias-lab sweep), glue, "
                                              "bias-model, challenge")
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

    export = actions.add_parser("export", help="write runs into a bundle (.zip) to import on another machine",
                                description="Write runs (their index rows and artifact folders, with a manifest of "
                                            "sha256 hashes) into one zip. The runs are those named and every complete "
                                            "run of --kind / --model. Example: bias-lab runs export --kind evaluate "
                                            "--out evals.zip")
    export.add_argument("runs", nargs="*", metavar="RUN", help="run ids or artifact folders")
    export.add_argument("--kind", help="also every complete run of this kind")
    export.add_argument("--model", help="also every complete run of this model (with --kind: of both)")
    export.add_argument("--include-incomplete", action="store_true",
                        help="allow running, failed and interrupted runs (refused by default)")
    export.add_argument("--out", required=True, metavar="FILE.zip", help="the bundle to write")
    export.set_defaults(handler=export_runs)

    importing = actions.add_parser("import", help="add the runs of a bundle to this machine's run store",
                                   description="Check a bundle whole (paths, sizes, sha256 of every file), then add "
                                               "its runs under $BIAS_LAB_HOME/runs/<id>; runs already stored are "
                                               "skipped. Example: bias-lab runs import evals.zip")
    importing.add_argument("bundle", metavar="FILE.zip", help="a bundle written by `bias-lab runs export`")
    importing.set_defaults(handler=import_runs)


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


def export_runs(args) -> int:
    from ..bundles import export_bundle

    summary = export_bundle(args.runs, args.out, kind=args.kind, model=args.model,
                            include_incomplete=args.include_incomplete)
    print(summary.line())
    return 0


def import_runs(args) -> int:
    from ..bundles import import_bundle

    for line in import_bundle(args.bundle).lines():
        print(line)
    return 0
