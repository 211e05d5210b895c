"""``bias-lab evaluate {stereoset|crows|seat|winobias|perplexity}``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import add_model_arguments, model_from_args, require_kind


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="run a bias benchmark or perplexity, optionally under an intervention")
    parser.add_argument("benchmark", choices=("stereoset", "crows", "seat", "winobias", "perplexity"))
    add_model_arguments(parser)
    parser.add_argument("--data", help="local file/folder or HF dataset id (defaults: McGill-NLP/stereoset, "
                                       "nyu-mll/crows_pairs, wikitext)")
    parser.add_argument("--intervention", type=Path, help="intervention spec JSON (neurons, heads)")
    parser.add_argument("--batch-size", type=int, help="sequences per batch (default: by tokens)")
    parser.add_argument("--out", type=Path, required=True, help="summary JSON")
    parser.add_argument("--per-item", type=Path, help="per-item scores (parquet)")
    parser.add_argument("--intersentence", action="store_true", help="StereoSet: also the intersentence task")
    parser.add_argument("--variant", default="shared", choices=("shared", "modified"),
                        help="CrowS-Pairs: score shared tokens (original) or the modified ones")
    parser.add_argument("--tests", nargs="+", help="SEAT: these tests (e.g. sent-weat6 sent-weat7), or 'all'; "
                                                   "default: the six gender tests sent-weat6/6b/7/7b/8/8b where present")
    parser.add_argument("--pooling", choices=("mean", "cls", "last"), help="SEAT sentence embedding")
    parser.add_argument("--per-layer", action="store_true", help="SEAT: effect size of every hidden layer")
    parser.add_argument("--samples", type=int, default=100_000, help="SEAT: permutation samples when not exact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="first N items: StereoSet examples (of each task), CrowS/WinoBias "
                                                  "pairs, text lines (not SEAT: choose --tests)")
    parser.add_argument("--retarget-all", action="store_true",
                        help="neuron edits at the mask position act at every position where the inputs have no mask "
                             "token (SEAT, causal LMs); otherwise such an intervention is refused")
    parser.add_argument("--max-length", type=int, help="perplexity: window length in tokens")
    parser.add_argument("--stride", type=int, help="perplexity: window stride for causal LMs")
    parser.set_defaults(handler=run)


def _options(args) -> dict:
    if args.benchmark == "stereoset":
        return {}
    if args.benchmark == "crows":
        return {"variant": args.variant}
    if args.benchmark == "seat":
        return {"pooling": args.pooling, "samples": args.samples, "seed": args.seed, "per_layer": args.per_layer}
    if args.benchmark == "perplexity":
        return {"max_length": args.max_length, **({"stride": args.stride} if args.stride else {})}
    return {}


def _check_arguments(args) -> None:
    for name in ("batch_size", "limit", "samples", "max_length", "stride"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BiasLabError(f"--{name.replace('_', '-')} {value} must be at least 1")
    if args.benchmark == "seat" and args.limit is not None:
        raise BiasLabError(f"--limit {args.limit} does not apply to SEAT (each test is scored whole): choose tests "
                           "with --tests instead")


def _seat_tests(args) -> list[str] | None:
    """The SEAT tests to run: as named, every test for 'all', else the gender tests (as the app)."""
    if args.benchmark != "seat" or args.data is None:
        return args.tests
    if args.tests == ["all"]:
        return None
    if args.tests:
        return args.tests
    from ..data.seat import default_seat_tests, seat_test_names

    available = seat_test_names(args.data)
    chosen = default_seat_tests(available)
    if len(chosen) < len(available):
        print(f"note: SEAT on {len(chosen)} gender tests of the {len(available)} in {args.data} "
              "(--tests all for every test)", file=sys.stderr)
    return chosen


def _stored_config(args, result, tasks, options) -> dict:
    """The run config: ``evaluation_config``'s keys (so the app reads CLI and app runs alike), plus
    the CLI's own options and tasks."""
    from ..evaluation.record import evaluation_config

    return {**evaluation_config(result, None, data=args.data, limit=args.limit),
            "options": {k: v for k, v in options.items() if k != "nsp_model"}, "tasks": list(tasks)}


def run(args) -> int:
    from ..evaluation import check_reach, evaluate, load_benchmark_data
    from ..evaluation.record import headline
    from ..heads.metrics import BENCHMARK_KINDS
    from ..interventions import InterventionSpec
    from ..provenance import provenance
    from ..store import RunStore, write_json_atomic, write_parquet_atomic

    _check_arguments(args)
    spec = InterventionSpec.load(args.intervention) if args.intervention else None
    tasks = ("intrasentence", "intersentence") if args.intersentence else ("intrasentence",)
    data = load_benchmark_data(args.benchmark, args.data, tasks=tasks, tests=_seat_tests(args), limit=args.limit)
    loaded = model_from_args(args)
    require_kind(loaded, BENCHMARK_KINDS[args.benchmark], f"evaluate {args.benchmark}",
                 "an encoder can only be evaluated with SEAT (bias-lab evaluate seat)" if loaded.kind == "encoder" else "")
    check_reach(loaded, args.benchmark, spec, retarget=args.retarget_all)  # before the NSP head loads: fail fast
    options = _options(args)
    if args.benchmark == "stereoset" and args.intersentence and loaded.kind != "causal":
        options["nsp_model"] = _nsp_model(loaded)
    # Score first, store after: bad input (a spec that cannot act, a wrong model) fails before the
    # run exists, so the store holds no failed run for it.
    with TqdmProgress(f"{args.benchmark}") as bar:
        result = evaluate(loaded, args.benchmark, data, intervention=spec, batch_size=args.batch_size,
                          progress=bar, retarget=args.retarget_all, **options)
    for note in result.config.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    config = _stored_config(args, result, tasks, options)
    run = RunStore().start("evaluate", config, model=loaded.source, provenance=provenance(str(loaded.device), args.seed))
    with run:
        write_json_atomic(args.out, result.summary)
        run.write_json("summary.json", result.summary)
        run.write_parquet("items.parquet", result.items)
        if args.per_item:
            write_parquet_atomic(args.per_item, result.items)
        run.complete({"method": config["method"], "items": config["items"], **headline(args.benchmark, result.summary)})
    print(_summary_lines(args.benchmark, result.summary))
    print(f"→ {args.out}" + (f", {args.per_item}" if args.per_item else "") + f" (run {run.id})")
    return 0


def _nsp_model(loaded):
    from transformers import AutoModelForNextSentencePrediction

    from ..models import quiet_transformers

    try:
        with quiet_transformers():
            model, info = AutoModelForNextSentencePrediction.from_pretrained(
                loaded.source, output_loading_info=True, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BiasLabError(f"intersentence StereoSet for {loaded.source!r} needs its next-sentence head: {error}") from None
    if info.get("missing_keys"):
        raise BiasLabError(f"{loaded.source!r} has no trained next-sentence head: run StereoSet without --intersentence")
    return model.to(loaded.device).eval()


# How the CLI names each headline number (record.headline's keys): a metric's own name, never the
# generic "performance" (StereoSet's is 100 − LMS, perplexity's is the perplexity).
def _summary_lines(benchmark: str, summary: dict) -> str:
    from ..evaluation.record import headline, headline_text

    text = headline_text(benchmark, headline(benchmark, summary))
    if benchmark == "stereoset" and "intersentence" in summary:  # headline() is intrasentence only
        overall = summary["intersentence"]["overall"]
        values = {**overall, "bias": abs(overall["ss"] - 50)}
        text = f"intrasentence  {text}\nintersentence  {headline_text(benchmark, values)}"
    return text
