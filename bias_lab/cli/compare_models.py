"""``bias-lab compare-models M1 M2 …``: compressed models side by side on the same benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BiasLabError
from ..metrics import BENCHMARKS
from ..progress import TqdmProgress
from .common import add_generation_arguments, generation_options, positive

EXAMPLES = """\
models:
  a hub id or model folder; a run folder holding model/ (a distilled student, `bias-lab distill --out RUN`);
  MODEL+SPEC for a pruned variant, SPEC = an intervention spec .json (heads: head pruning, neurons: BNS,
  mask: a mask file), a mask .safetensors file, or a finished `bias-lab masks train` run (folder or id)

examples:
  bias-lab compare-models gpt2 runs/distil-6 gpt2+heads.json --benchmarks perplexity stereoset winobias \\
      --data perplexity=wiki.valid.tokens stereoset=dev.json winobias=winobias/ --limit 500 --out runs/compression
  bias-lab compare-models gpt2 distilgpt2 --benchmarks toxicity --data toxicity=prompts.jsonl --samples 5 --out RUN
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare-models", help="score several models (teacher, distilled students, pruned variants) side by side",
        description="Score every model on every benchmark, on the same data, into one table (one row per model: "
                    "parameters, layers, heads kept, inference time per token, every metric of the metric table, "
                    "StereoSet choice counts, WinoBias anti-bias choices, average generation length) — a run, "
                    "resumable per (model, benchmark).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL", help="hub id, model folder, distilled run or MODEL+SPEC")
    parser.add_argument("--benchmarks", nargs="+", required=True, metavar="BENCHMARK",
                        help=f"any of {', '.join(BENCHMARKS)}")
    parser.add_argument("--data", nargs="+", default=[], metavar="BENCHMARK=PATH",
                        help="a benchmark's data: local file/folder or HF dataset id (defaults as for `bias-lab "
                             "evaluate`; SEAT, WinoBias and ig2-gap need it)")
    parser.add_argument("--labels", nargs="+", metavar="LABEL", help="the models' names in the table, one per model")
    parser.add_argument("--limit", type=int, help="the first N items of each benchmark (not SEAT: choose --tests)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: a new folder in the run store)")
    parser.add_argument("--kind", default="auto", choices=("auto", "masked", "causal", "encoder", "classifier"),
                        help="how every model loads (default: read from each checkpoint)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoints' own code to run")
    parser.add_argument("--batch-size", type=int, help="sequences per batch (default: by tokens)")
    parser.add_argument("--seed", type=int, default=0, help="SEAT permutations, mlm-loss's masked tokens, generation")
    parser.add_argument("--retarget-all", action="store_true",
                        help="neuron edits at the mask position act at every position where the inputs have no mask "
                             "token (SEAT, causal LMs); otherwise such a spec is refused")
    parser.add_argument("--variant", default="shared", choices=("shared", "modified"), help="CrowS-Pairs scoring")
    parser.add_argument("--tests", nargs="+", help="SEAT: these tests, or 'all' (default: the six gender tests)")
    parser.add_argument("--max-length", type=int, help="perplexity, mlm-loss: window / truncation length in tokens")
    parser.add_argument("--stride", type=int, help="perplexity: window stride for causal LMs")
    timing = parser.add_argument_group("inference time per token (a fixed batch of random token ids)")
    timing.add_argument("--timing-batch", type=int, default=8, help="sequences in the timed batch (8)")
    timing.add_argument("--timing-length", type=int, default=64, help="tokens per sequence (64, at most the model's)")
    timing.add_argument("--timing-repeats", type=int, default=5, help="timed forward passes, median taken (5; 0 = off)")
    add_generation_arguments(parser)
    prompts = parser.add_argument_group("prompts of toxicity, toxicity-gap")
    prompts.add_argument("--sample", type=int, metavar="N", help="a random sample of N prompts (seeded by --seed)")
    prompts.add_argument("--axes", nargs="+", metavar="AXIS", help="HolisticBias axes ('all' for every axis) or BOLD "
                                                                   "domains")
    parser.set_defaults(handler=run)


def data_sources(pairs: list[str]) -> dict[str, str]:
    """``BENCHMARK=PATH`` pairs → {benchmark: path}; a pair without '=' or a benchmark given twice is refused."""
    sources: dict[str, str] = {}
    for pair in pairs:
        name, equals, path = pair.partition("=")
        if not equals or not name.strip() or not path.strip():
            raise BiasLabError(f"--data {pair!r} is not BENCHMARK=PATH (e.g. stereoset=dev.json)")
        if name.strip() in sources:
            raise BiasLabError(f"--data gives {name.strip()!r} twice: give each benchmark's data once")
        sources[name.strip()] = path.strip()
    return sources


def _options(args, benchmark: str) -> dict:
    """A benchmark's ``evaluate`` options from the arguments (as `bias-lab evaluate` takes them)."""
    from ..evaluation.generations import generates_text

    if benchmark == "crows":
        return {"variant": args.variant}
    if benchmark == "seat":
        return {"seed": args.seed}
    if benchmark == "perplexity":
        return {"max_length": args.max_length, **({"stride": args.stride} if args.stride else {})}
    if generates_text(benchmark):
        return generation_options(args)
    options = {"seed": args.seed} if BENCHMARKS.get(benchmark) is not None and BENCHMARKS[benchmark].seeded else {}
    if benchmark == "mlm-loss" and args.max_length:
        options["max_length"] = args.max_length
    return options


def _loader_options(args, benchmark: str, source: str | None) -> dict:
    """How the items of a benchmark are chosen: SEAT's tests; the prompts of a generation benchmark."""
    from ..evaluation.generations import generates_text

    if benchmark == "seat":
        if args.tests and args.tests != ["all"]:
            return {"tests": list(args.tests)}
        if args.tests == ["all"] or source is None:
            return {}
        from ..data.seat import default_seat_tests, seat_test_names

        return {"tests": default_seat_tests(seat_test_names(source))}
    if generates_text(benchmark):
        options = {"seed": args.seed}
        if args.sample:
            options["sample"] = args.sample
        if args.axes:
            options.update(axes=list(args.axes) if args.axes != ["all"] else "all", domains=list(args.axes))
        return options
    return {}


def settings_from(args):
    from ..compression.compare import CompareSettings

    positive(args, "batch_size", "limit", "max_length", "stride", "sample", "timing_batch", "timing_length")
    sources = data_sources(args.data)
    benchmarks = tuple(args.benchmarks)
    known = [name for name in benchmarks if name in BENCHMARKS]
    return CompareSettings(
        benchmarks=benchmarks, data=sources, limit=args.limit,
        options={name: _options(args, name) for name in known},
        loader_options={name: options for name in known if (options := _loader_options(args, name, sources.get(name)))},
        kind=args.kind, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        batch_size=args.batch_size, retarget=args.retarget_all, timing_batch=args.timing_batch,
        timing_length=args.timing_length, timing_repeats=args.timing_repeats)


SHOWN = ("model", "parameters", "layers", "heads_kept", "inference_ms_per_token")


def run(args) -> int:
    from ..compression.compare import compare_models

    settings = settings_from(args)
    settings.validate()  # before the data loads: an unknown benchmark is named at once
    with TqdmProgress("models × benchmarks") as bar:
        result = compare_models(args.models, args.out, settings, labels=args.labels, progress=bar)
    shown = list(SHOWN) + [column for column in result.metric_columns() if column not in SHOWN]
    table = result.table[[column for column in shown if column in result.table]]
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    print(f"→ {result.folder} (run {result.meta['id']})")
    return 0
