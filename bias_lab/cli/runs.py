"""``bias-lab runs list|show|delete``: browse the run store."""

from __future__ import annotations

from ..store import STATUSES, RunStore
from .common import print_json, print_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list, show and delete stored runs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True

    listing = actions.add_parser("list", help="list runs, newest first")
    listing.add_argument("--kind", help="only runs of this kind (e.g. ig2, heads, prune, evaluate)")
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
    if args.limit is not None and args.limit < 1:
        from ..errors import BiasLabError

        raise BiasLabError(f"--limit {args.limit} must be at least 1")
    records = RunStore().list(kind=args.kind, status=args.status, model=args.model, limit=args.limit)
    if args.json:
        print_json([record.to_dict() for record in records])
    elif not records:
        print("no runs")
    else:
        rows = [dict(record.to_dict(), what=describe(record)) for record in records]
        print_table(rows, ["id", "kind", "model", "status", "created_at", "what"])
    return 0


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _ig2(config: dict, summary: dict) -> str:
    if config.get("pair"):
        prompts = f"{config.get('dimension')} {config.get('modifier')} {'–'.join(config['pair'])}"
    else:
        prompts = str(config.get("prompts_file", "prompts"))
    return (f"{prompts}, target {config.get('target')}: {summary.get('prompts', config.get('prompts'))} prompts"
            + (f", mean gap {_number(summary['mean_gap'])}" if "mean_gap" in summary else ""))


def _evaluate(config: dict, summary: dict) -> str:
    from .evaluate import headline_text

    from pathlib import Path

    from ..evaluation.record import data_label

    benchmark = config.get("benchmark", "?")
    name = Path(config["data"]).name if config.get("data") else None  # the file, not its whole path
    data = data_label(name, config.get("limit"), config.get("items"))
    return f"{benchmark} on {data}, {config.get('method', 'original')}: {headline_text(benchmark, summary)}"


def _heads(config: dict, summary: dict) -> str:
    perf, bias = config.get("perf") or "none", config.get("bias") or "none"
    text = f"perf {perf}, bias {bias}: {summary.get('heads', '?')} heads"
    baselines = [f"{name} {_number(summary[key])}" for name, key in ((perf, "baseline_perf"), (bias, "baseline_bias"))
                 if name != "none" and key in summary]
    return text + (", baseline " + ", ".join(baselines) if baselines else "")


def _importance(config: dict, summary: dict) -> str:
    steps = f", {config['iterative']} pruning steps" if config.get("iterative") else ""
    return f"gradient importance on {config.get('perf_data')}{steps}: {summary.get('heads', '?')} heads"


def _prune(config: dict, summary: dict) -> str:
    text = f"{config.get('objective')} mask, block {config.get('block')}"
    if "density" in summary:
        text += f": density {summary['density']:.1f} %, {summary.get('pruned_heads', 0)} heads pruned"
    return text


def _debias(config: dict, summary: dict) -> str:
    return f"{config.get('objective')} weight training" + (f": {summary['steps']} steps" if "steps" in summary else "")


DESCRIBERS = {"ig2": _ig2, "evaluate": _evaluate, "heads": _heads, "head-importance": _importance, "prune": _prune,
              "debias": _debias}


def describe(record, width: int = 90) -> str:
    """What a run is, in one short line: its subject from the config and its headline numbers (the
    error for a failed run)."""
    if record.status == "failed" and record.error:
        text = f"failed: {record.error}"
    else:
        try:
            text = DESCRIBERS[record.kind](record.config, record.summary)
        except (KeyError, TypeError, ValueError):  # a kind without describer, or a run written by an older version
            text = ", ".join(f"{k} {_number(v)}" for k, v in record.summary.items() if isinstance(v, (int, float, str)))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show_run(args) -> int:
    print_json(RunStore().get(args.run).to_dict())
    return 0


def delete_run(args) -> int:
    record = RunStore().delete(args.run, keep_artifacts=args.keep_artifacts)
    print(f"deleted run {record.id}" + ("" if args.keep_artifacts else f" and {record.artifact_dir}"))
    return 0
