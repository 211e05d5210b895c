"""``bias-lab heads score|select|importance|tradeoff``: the attention-head methods."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import BiasLabError
from ..metrics import METRICS, either, metric_names
from ..progress import TqdmProgress
from .common import (METRIC_LABELS, add_actions, add_generation_arguments, add_model_arguments, check_table_file,
                     generation_options, model_from_args, positive, require_kind, run_folder)

RULES = ("fasp", "random", "magnitude", "performance", "bias")

EXAMPLES = """\
examples:
  bias-lab heads score --model bert-base-uncased --perf mlm-loss --perf-data wiki.valid.tokens --bias stereoset --bias-data dev.json --out runs/heads
  bias-lab heads select --run runs/heads --rule fasp --alpha 0.1 --gamma 0.3 --out heads.json
  bias-lab heads importance --model bert-base-uncased --perf-data wiki.valid.tokens --iterative 5 --out runs/importance
  bias-lab heads tradeoff --run runs/heads --perf mlm-loss --perf-data wiki.valid.tokens --bias stereoset --bias-data dev.json --out tradeoff.csv
"""


def _metric_help(role: str) -> str:
    text = "; ".join(f"{name}: {METRICS[name].description}" for name in metric_names(role))
    return text.replace("%", "%%")  # argparse formats help strings with %


def _add_metric_arguments(parser) -> None:
    parser.add_argument("--perf", default="mlm-loss", choices=(*metric_names("performance"), "none"),
                        help="performance metric (lower is better) — " + _metric_help("performance")
                             + "; none: bias only, e.g. for an encoder without LM head (with --bias seat)")
    parser.add_argument("--perf-data", metavar="PATH", help="the performance metric's data: a text file for mlm-loss/perplexity "
                                            "(one passage per line) or a StereoSet file")
    parser.add_argument("--limit", type=int, help="the first N items of the performance data (text lines, "
                                                  "StereoSet examples)")
    parser.add_argument("--bias", choices=metric_names("bias"),
                        help="bias metric (0 = unbiased) — " + _metric_help("bias"))
    parser.add_argument("--bias-data", metavar="PATH", help="the bias benchmark's file or folder (ig2-gap: a prompt JSONL; toxicity-gap: group prompts)")
    parser.add_argument("--bias-limit", type=int, help="the first N items of the bias data: StereoSet examples, "
                                                       "CrowS/WinoBias pairs, ig2-gap prompts (not SEAT: give one test's file, "
                                                       "or a folder of the tests wanted, as --bias-data)")
    parser.add_argument("--batch-size", type=int, help="sequences per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masked tokens of mlm-loss, and of generation")
    add_generation_arguments(parser)


def register(subparsers) -> None:
    group = subparsers.add_parser(
        "heads", help="attention heads: score, select, importance, tradeoff",
        description="Attention heads: ablate every head and record the performance and bias effects (a run), "
                    "choose heads to prune from such a run (FASP and baselines), Michel et al. gradient importance "
                    "(a run) and FASP's performance/bias trade-off.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = add_actions(group)

    score = actions.add_parser("score", help="ablate every head: performance and bias effects (creates a run)")
    add_model_arguments(score)
    _add_metric_arguments(score)
    score.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="run folder (re-running into it resumes)")
    score.add_argument("--no-prefix-cache", action="store_true", help="recompute the layers below the ablated one")
    score.add_argument("--ablations-per-pass", type=int, help="heads of a layer ablated in one replicated pass "
                                                              "(default: all on a GPU; 1 = one pass per head)")
    score.set_defaults(handler=score_command)

    select = actions.add_parser("select", help="choose heads to prune from a scored run → intervention spec")
    select.add_argument("--run", type=Path, required=True, metavar="RUN",
                        help="folder or id of a `bias-lab heads score` run")
    select.add_argument("--rule", default="fasp", choices=RULES)
    select.add_argument("--alpha", type=float, required=True, help="share of heads to prune")
    select.add_argument("--gamma", type=float, default=0.0, help="FASP: share of heads protected for performance")
    select.add_argument("--seed", type=int, default=0, help="random baseline seed")
    select.add_argument("--model", help="magnitude baseline: the model (default: the run's)")
    select.add_argument("--out", type=Path, required=True, metavar="SPEC.json", help="intervention spec JSON of the pruned heads")
    select.add_argument("--grid", type=Path, metavar="FILE", help="also write the head grid (layer, head, status, scores) as a "
                                                  ".csv or .parquet table")
    select.set_defaults(handler=select_command)

    importance = actions.add_parser("importance", help="Michel et al. gradient head importance and iterative "
                                                       "pruning (creates a run)")
    add_model_arguments(importance)
    _add_metric_arguments(importance)
    importance.add_argument("--iterative", type=int, default=0, metavar="STEPS",
                            help="also prune iteratively for STEPS steps and record perf/bias per step")
    importance.add_argument("--fraction", type=float, default=0.1, help="share of heads removed per step")
    importance.add_argument("--scores", default="gradient", choices=("gradient", "ablation"),
                            help="iterative pruning re-scores heads by gradient importance or by ablation")
    importance.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder")
    importance.set_defaults(handler=importance_command)

    tradeoff = actions.add_parser("tradeoff", help="FASP over a grid of alpha and gamma: perf and bias of each "
                                                   "pruned model")
    tradeoff.add_argument("--run", type=Path, required=True, metavar="RUN",
                          help="folder or id of a `bias-lab heads score` run")
    add_model_arguments(tradeoff)
    _add_metric_arguments(tradeoff)
    tradeoff.add_argument("--alphas", type=float, nargs="+", help="default 0, 0.02 … 0.2")
    tradeoff.add_argument("--gammas", type=float, nargs="+", help="default 0.2 … 0.7")
    tradeoff.add_argument("--out", type=Path, required=True, metavar="FILE", help="table (.csv or .parquet)")
    tradeoff.set_defaults(handler=tradeoff_command)


def _metrics(args, loaded):
    """``(perf, bias)`` head metrics from the arguments (``perf`` None for ``--perf none``); the
    model's kind is checked against both before any data is read or any run exists."""
    from ..heads.metrics import metrics_for

    return metrics_for(loaded, perf=args.perf, perf_data=args.perf_data, bias=args.bias, bias_data=args.bias_data,
                       limit=args.limit, bias_limit=args.bias_limit, batch_size=args.batch_size, seed=args.seed,
                       labels=METRIC_LABELS, generation=generation_options(args))


def score_command(args) -> int:
    from ..heads.runs import run_head_scoring

    positive(args, "limit", "bias_limit", "batch_size", "ablations_per_pass")
    if args.perf == "none" and not args.bias:
        raise BiasLabError("--perf none scores bias only: give --bias (an encoder: --bias seat --bias-data DIR)")
    loaded = model_from_args(args)
    perf, bias = _metrics(args, loaded)
    config = {"perf": args.perf, "perf_data": args.perf_data, "bias": args.bias, "bias_data": args.bias_data,
              "limit": args.limit, "bias_limit": args.bias_limit, "seed": args.seed}
    with TqdmProgress("heads") as bar:
        result = run_head_scoring(loaded, perf, bias, args.out, description=config, seed=args.seed,
                                  use_prefix_cache=not args.no_prefix_cache,
                                  ablations_per_pass=args.ablations_per_pass, progress=bar)
    table, baseline = result.table, result.baseline
    worst = table[table["bias_delta"] < 0].sort_values("bias_delta").head(3)
    baselines = [f"{metric.name} {baseline[key]:.4f}" for metric, key in ((perf, "perf"), (bias, "bias")) if metric]
    seconds = result.meta.get("timing", {}).get("scoring_s", 0.0)
    print(f"scored {len(table)} heads in {seconds:.1f} s; baseline " + ", ".join(baselines))
    if bias is not None and worst.empty:
        print("no head's removal lowers bias")
    elif bias is not None:
        print("heads whose removal lowers bias most: " + ", ".join(
            f"L{r.layer}H{r.head} ({r.bias_delta:+.4g})" for r in worst.itertuples()))
    print(f"→ {result.folder}")
    return 0


def _scored_run(value: Path):
    from ..heads.runs import HeadScoresResult

    return HeadScoresResult.load(run_folder(value))


def _run_model(folder: Path) -> str:
    from ..store import RunStore

    return RunStore().get(str(folder)).model


def select_command(args) -> int:
    from ..heads.runs import PERF_NEEDED
    from ..heads.selection import head_magnitudes, pruned_spec, select
    from ..tables import write_table

    check_table_file(args.grid)
    result = _scored_run(args.run)
    if args.rule in ("fasp", "bias") and not result.has_bias:
        raise BiasLabError(f"rule {args.rule!r} needs bias scores: score the heads with --bias")
    if args.rule in ("fasp", "performance") and not result.has_perf:
        raise BiasLabError(f"rule {args.rule!r} needs a performance score per head, but {str(args.run)!r} was scored "
                           f"with --perf none: {PERF_NEEDED}, or use --rule bias")
    options = {}
    if args.rule == "magnitude":
        from ..models import load_model

        options["magnitudes"] = head_magnitudes(load_model(args.model or result.config.get("model")
                                                           or _run_model(result.folder), device="cpu"))
    if args.rule == "random":
        options["seed"] = args.seed
    grid = select(result.table, args.rule, alpha=args.alpha, gamma=args.gamma, **options)
    pruned_spec(grid).save(args.out)
    if args.grid:
        write_table(grid, args.grid)
    counts = grid["status"].value_counts().to_dict()
    print(f"{args.rule}: pruned {counts.get('pruned', 0)}, protected {counts.get('protected', 0)}, "
          f"kept {counts.get('kept', 0)} of {len(grid)} heads → {args.out}" + (f", {args.grid}" if args.grid else ""))
    return 0


def importance_command(args) -> int:
    from ..data import load_text
    from ..heads.runs import run_head_importance

    positive(args, "limit", "bias_limit", "batch_size")
    if not args.perf_data:
        raise BiasLabError("heads importance needs --perf-data: a text file whose loss the gates are scored on")
    if args.iterative and args.perf == "none":
        raise BiasLabError("heads importance --iterative records performance per step: give --perf "
                           f"{either(metric_names('performance'))}, not none")
    loaded = model_from_args(args)
    require_kind(loaded, ("masked", "causal"), "heads importance",
                 "the gradient importance comes from the LM loss (an encoder can be scored with "
                 "`bias-lab heads score --perf none --bias seat`)")
    texts = load_text(args.perf_data, limit=args.limit)
    perf, bias = _metrics(args, loaded) if args.iterative else (None, None)
    with TqdmProgress("iterative pruning" if args.iterative else "head importance") as bar:
        result = run_head_importance(loaded, texts, args.out, perf=perf, bias=bias, iterative=args.iterative,
                                     fraction=args.fraction, scores=args.scores, batch_size=args.batch_size,
                                     seed=args.seed, description={"perf_data": args.perf_data, "limit": args.limit},
                                     progress=bar)
    least = result.importance.sort_values("importance").head(5)
    print("least important heads: " + ", ".join(f"L{r.layer}H{r.head} ({r.importance:.3f})" for r in least.itertuples()))
    if result.curve is not None:
        print(f"iterative pruning: {int(result.curve['step'].max())} steps")
    print(f"→ {result.folder}")
    return 0


def tradeoff_command(args) -> int:
    from ..heads.runs import PERF_NEEDED
    from ..heads.selection import fasp_tradeoff
    from ..tables import write_table

    positive(args, "limit", "bias_limit", "batch_size")
    check_table_file(args.out)
    result = _scored_run(args.run)
    if not result.has_bias:
        raise BiasLabError("the trade-off needs bias scores: score the heads with --bias")
    if not result.has_perf:
        raise BiasLabError(f"the trade-off prunes by FASP, which needs a performance score per head, but "
                           f"{str(args.run)!r} was scored with --perf none: {PERF_NEEDED}")
    if args.perf == "none":
        raise BiasLabError("the trade-off measures each pruned model's performance: give --perf "
                           f"{either(metric_names('performance'))}, not none")
    if args.model is None:
        args.model = _run_model(result.folder)
    loaded = model_from_args(args)
    perf, bias = _metrics(args, loaded)
    with TqdmProgress("pruned models") as bar:
        points = fasp_tradeoff(loaded, result.table, perf, bias, args.alphas, args.gammas, progress=bar)
    write_table(points.assign(pruned=points["pruned"].map(json.dumps)), args.out)
    best = points.sort_values(["bias", "perf"]).iloc[0]
    print(f"{len(points)} grid points, {points['pruned'].map(json.dumps).nunique()} distinct pruned sets; lowest bias "
          f"{best['bias']:.4f} at alpha {best['alpha']}, gamma {best['gamma']} (perf {best['perf']:.4f}) → {args.out}")
    return 0
