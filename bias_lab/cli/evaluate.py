"""``bias-lab evaluate {stereoset|crows|seat|winobias|perplexity}``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import add_model_arguments, model_from_args


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
    parser.add_argument("--tests", nargs="+", help="SEAT: only these tests (e.g. sent-weat6 sent-weat7)")
    parser.add_argument("--pooling", choices=("mean", "cls", "last"), help="SEAT sentence embedding")
    parser.add_argument("--per-layer", action="store_true", help="SEAT: effect size of every hidden layer")
    parser.add_argument("--samples", type=int, default=100_000, help="SEAT: permutation samples when not exact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="perplexity: first N lines of the text")
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


def run(args) -> int:
    from ..evaluation import evaluate, load_benchmark_data
    from ..interventions import InterventionSpec
    from ..provenance import provenance
    from ..store import RunStore, write_json_atomic

    for name in ("batch_size", "limit", "samples", "max_length", "stride"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BiasLabError(f"--{name.replace('_', '-')} {value} must be at least 1")
    spec = InterventionSpec.load(args.intervention) if args.intervention else None
    tasks = ("intrasentence", "intersentence") if args.intersentence else ("intrasentence",)
    data = load_benchmark_data(args.benchmark, args.data, tasks=tasks, tests=args.tests, limit=args.limit)
    loaded = model_from_args(args)
    if spec is not None:
        spec.validate(loaded)
    options = _options(args)
    if args.benchmark == "stereoset" and args.intersentence and loaded.kind != "causal":
        options["nsp_model"] = _nsp_model(loaded)
    store = RunStore()
    from ..evaluation.record import method_of

    config = {"benchmark": args.benchmark, "data": args.data, "intervention": spec.to_dict() if spec else None,
              "method": method_of(spec), "options": {k: v for k, v in options.items() if k != "nsp_model"},
              "tasks": list(tasks)}
    run = store.start("evaluate", config, model=loaded.source, provenance=provenance(str(loaded.device), args.seed))
    bar = TqdmProgress(f"{args.benchmark}")
    with run:
        try:
            result = evaluate(loaded, args.benchmark, data, intervention=spec, batch_size=args.batch_size,
                              progress=bar, **options)
        finally:
            bar.close()
        write_json_atomic(args.out, result.summary)
        run.write_json("summary.json", result.summary)
        run.write_parquet("items.parquet", result.items)
        if args.per_item:
            from ..store import write_parquet_atomic

            write_parquet_atomic(args.per_item, result.items)
        from ..evaluation.record import headline, method_of

        run.complete({"method": method_of(spec), **headline(args.benchmark, result.summary)})
    print(_headline(args.benchmark, result.summary), file=sys.stdout)
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


def _headline(benchmark: str, summary: dict) -> str:
    from ..evaluation.record import headline

    return "  ".join(f"{k} {v:.3f}" for k, v in headline(benchmark, summary).items())
