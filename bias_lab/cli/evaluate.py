"""``bias-lab evaluate BENCHMARK``: any benchmark of the library's table, as a stored run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BiasLabError
from ..metrics import ANY_KIND, BENCHMARKS, kinds_text
from ..progress import TqdmProgress
from .common import add_generation_arguments, add_model_arguments, generation_options, model_from_args, positive, require_kind


def _benchmarks_text() -> str:
    lines = [f"  {name:<11} {entry.title}: {entry.data}; "
             + ("any model" if set(entry.kinds) == set(ANY_KIND) else kinds_text(entry.kinds))
             for name, entry in BENCHMARKS.items()]
    return ("benchmarks:\n" + "\n".join(lines) + "\n\nexamples:\n"
            "  bias-lab evaluate stereoset --model bert-base-uncased --data dev.json\n"
            "  bias-lab evaluate crows --model gpt2 --intervention heads.json --out runs/crows-pruned\n"
            "  bias-lab evaluate seat --model sentence-transformers/all-MiniLM-L6-v2 --data seat/ --tests all\n")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="run a benchmark, optionally under an intervention (creates a run)",
        description="Score the model, as loaded or under an intervention, on one benchmark; the summary, the "
                    "per-item scores and the config are stored as a run.",
        epilog=_benchmarks_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=tuple(BENCHMARKS), metavar="BENCHMARK",
                        help=", ".join(BENCHMARKS))
    add_model_arguments(parser)
    parser.add_argument("--data", metavar="PATH", help="local file/folder or HF dataset id (defaults: McGill-NLP/stereoset, "
                                       "nyu-mll/crows_pairs, wikitext; SEAT, WinoBias and ig2-gap need it)")
    parser.add_argument("--intervention", type=Path, metavar="SPEC.json", help="intervention spec JSON (neurons, heads, mask)")
    parser.add_argument("--batch-size", type=int, help="sequences per batch (default: by tokens)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: a new folder in the run store)")
    parser.add_argument("--intersentence", action="store_true", help="StereoSet: also the intersentence task")
    parser.add_argument("--variant", default="shared", choices=("shared", "modified"),
                        help="CrowS-Pairs: score shared tokens (original) or the modified ones")
    parser.add_argument("--tests", nargs="+", help="SEAT: these tests (e.g. sent-weat6 sent-weat7), or 'all'; "
                                                   "default: the six gender tests sent-weat6/6b/7/7b/8/8b where present")
    parser.add_argument("--pooling", choices=("mean", "cls", "last"), help="SEAT sentence embedding")
    parser.add_argument("--per-layer", action="store_true", help="SEAT: effect size of every hidden layer")
    parser.add_argument("--permutations", type=int, default=100_000, help="SEAT: permutation samples when not exact")
    parser.add_argument("--seed", type=int, default=0, help="SEAT permutations, mlm-loss's masked tokens, generation")
    parser.add_argument("--limit", type=int, help="first N items: StereoSet examples (of each task), CrowS/WinoBias "
                                                  "pairs, text lines (perplexity, mlm-loss), ig2-gap prompts (not "
                                                  "SEAT: choose --tests)")
    parser.add_argument("--retarget-all", action="store_true",
                        help="neuron edits at the mask position act at every position where the inputs have no mask "
                             "token (SEAT, causal LMs); otherwise such an intervention is refused")
    parser.add_argument("--max-length", type=int, help="perplexity, mlm-loss: window / truncation length in tokens")
    parser.add_argument("--stride", type=int, help="perplexity: window stride for causal LMs")
    add_generation_arguments(parser)
    prompts = parser.add_argument_group("prompts of toxicity, toxicity-gap")
    prompts.add_argument("--sample", type=int, metavar="N", help="a random sample of N prompts (seeded by --seed)")
    prompts.add_argument("--challenging", action="store_true", help="RealToxicityPrompts: its challenging prompts only")
    prompts.add_argument("--axes", nargs="+", metavar="AXIS",
                         help="HolisticBias axes (default FASP's five: gender_and_sex race_ethnicity religion "
                              "sexual_orientation nationality; 'all' for every axis) or BOLD domains")
    parser.set_defaults(handler=run)


def _loader_options(args) -> dict:
    """How the prompts of a generation benchmark are chosen; nothing for the others."""
    if not BENCHMARKS[args.benchmark].variants:
        for flag, value in (("--sample", args.sample), ("--challenging", args.challenging), ("--axes", args.axes)):
            if value:
                raise BiasLabError(f"{flag} applies to the prompts of toxicity and toxicity-gap, not {args.benchmark}")
        return {}
    positive(args, "sample")
    options = {"sample": args.sample, "seed": args.seed, "challenging": args.challenging}
    if args.axes:
        options.update(axes=tuple(args.axes) if args.axes != ["all"] else "all", domains=tuple(args.axes))
    return options


def _options(args) -> dict:
    """The benchmark's own options from the arguments."""
    if args.benchmark == "crows":
        return {"variant": args.variant}
    if args.benchmark == "seat":
        return {"pooling": args.pooling, "samples": args.permutations, "seed": args.seed, "per_layer": args.per_layer}
    if args.benchmark == "perplexity":
        return {"max_length": args.max_length, **({"stride": args.stride} if args.stride else {})}
    if BENCHMARKS[args.benchmark].variants:  # a benchmark that generates text
        return generation_options(args)
    options = {"seed": args.seed} if BENCHMARKS[args.benchmark].seeded else {}
    if args.benchmark == "mlm-loss" and args.max_length:
        options["max_length"] = args.max_length
    return options


def _check_arguments(args) -> None:
    positive(args, "batch_size", "limit", "permutations", "max_length", "stride")
    entry = BENCHMARKS[args.benchmark]
    if not entry.limit_unit and args.limit is not None:
        raise BiasLabError(f"--limit {args.limit} does not apply to {entry.title} (each test is scored whole): "
                           "choose tests with --tests instead")


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


def run(args) -> int:
    from ..evaluation import check_reach, evaluate, load_benchmark_data
    from ..evaluation.record import run_evaluation
    from ..interventions import InterventionSpec
    from ..store import RunStore

    _check_arguments(args)
    spec = InterventionSpec.load(args.intervention) if args.intervention else None
    tasks = ("intrasentence", "intersentence") if args.intersentence else ("intrasentence",)
    data = load_benchmark_data(args.benchmark, args.data, tasks=tasks, tests=_seat_tests(args), limit=args.limit,
                               **_loader_options(args))
    loaded = model_from_args(args)
    require_kind(loaded, BENCHMARKS[args.benchmark].kinds, f"evaluate {args.benchmark}",
                 "an encoder can only be evaluated with SEAT (bias-lab evaluate seat)" if loaded.kind == "encoder" else "")
    check_reach(loaded, args.benchmark, spec, retarget=args.retarget_all)  # before the NSP head loads: fail fast
    options = _options(args)
    if args.benchmark == "stereoset" and args.intersentence and loaded.kind != "causal":
        from ..evaluation.stereoset import load_nsp_model

        options["nsp_model"] = load_nsp_model(loaded)
    # Score first, store after: bad input (a spec that cannot act, a wrong model) fails before the
    # run exists, so the store holds no failed run for it.
    with TqdmProgress(f"{args.benchmark}") as bar:
        result = evaluate(loaded, args.benchmark, data, intervention=spec, batch_size=args.batch_size,
                          progress=bar, retarget=args.retarget_all, **options)
    for note in result.config.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    stored = run_evaluation(result, loaded, spec, data=args.data, limit=args.limit, seed=args.seed, out=args.out,
                            extra={"options": {k: v for k, v in options.items() if k != "nsp_model"},
                                   "tasks": list(tasks)})
    print(_summary_lines(args.benchmark, result.summary))
    print(f"→ {stored.folder} (run {RunStore().get(str(stored.folder)).id})")
    return 0


# How the CLI names each headline number (headline's keys): a metric's own name, never the
# generic "performance" (StereoSet's is 100 − LMS, perplexity's is the perplexity).
def _summary_lines(benchmark: str, summary: dict) -> str:
    from ..metrics import headline, headline_text

    text = headline_text(benchmark, headline(benchmark, summary))
    if benchmark == "stereoset" and "intersentence" in summary:  # headline() is intrasentence only
        overall = summary["intersentence"]["overall"]
        values = {**overall, "bias": abs(overall["ss"] - 50)}
        text = f"intrasentence  {text}\nintersentence  {headline_text(benchmark, values)}"
    return text
