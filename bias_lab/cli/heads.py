"""``bias-lab heads`` (score every head), ``heads select`` (FASP and baselines), ``heads importance``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import add_model_arguments, model_from_args, require_kind

PERF_NEEDED = "re-score the heads of an LM with --perf mlm-loss, perplexity or stereoset-lms"


def _add_metric_arguments(parser, *, bias: bool = True) -> None:
    parser.add_argument("--perf", default="mlm-loss", choices=("mlm-loss", "perplexity", "stereoset-lms", "none"),
                        help="performance metric (lower is better); none: bias only, e.g. for an encoder without "
                             "LM head (with --bias seat)")
    parser.add_argument("--perf-data", help="text file for mlm-loss/perplexity (one passage per line) or StereoSet file")
    parser.add_argument("--limit", type=int, help="at most N performance sentences")
    parser.add_argument("--bias-limit", type=int, help="at most N items of the bias data: StereoSet examples, "
                                                       "CrowS/WinoBias pairs, ig2-gap prompts (not SEAT: give fewer tests)")
    if bias:
        parser.add_argument("--bias", choices=("stereoset", "crows", "seat", "ig2-gap", "winobias"),
                            help="bias metric (0 = unbiased)")
        parser.add_argument("--bias-data", help="the bias benchmark's file or folder (ig2-gap: a prompt JSONL)")
    parser.add_argument("--batch-size", type=int, help="sequences per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masked tokens of mlm-loss")


def register(subparsers) -> None:
    parser = subparsers.add_parser("heads", help="ablate every attention head: performance and bias effects; "
                                                 "`heads select`, `heads importance`")
    add_model_arguments(parser)
    _add_metric_arguments(parser)
    parser.add_argument("--out", type=Path, help="run folder (re-running into it resumes)")
    parser.add_argument("--no-prefix-cache", action="store_true", help="recompute the layers below the ablated one")
    parser.add_argument("--ablations-per-pass", type=int, help="heads of a layer ablated in one replicated pass "
                                                               "(default: all; 1 = one pass per head)")
    parser.set_defaults(handler=score_command)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))

    select = actions.add_parser("select", help="choose heads to prune from a scored run")
    select.add_argument("--run", type=Path, required=True, help="folder of a `bias-lab heads` run")
    select.add_argument("--rule", default="fasp", choices=("fasp", "random", "magnitude", "performance", "bias"))
    select.add_argument("--alpha", type=float, required=True, help="share of heads to prune")
    select.add_argument("--gamma", type=float, default=0.0, help="FASP: share of heads protected for performance")
    select.add_argument("--seed", type=int, default=0, help="random baseline seed")
    select.add_argument("--model", help="magnitude baseline: the model (default: the run's)")
    select.add_argument("--out", type=Path, required=True, help="intervention spec JSON of the pruned heads")
    select.add_argument("--grid", type=Path, help="also write the head grid (layer, head, status, scores) as CSV")
    select.set_defaults(handler=select_command)

    importance = actions.add_parser("importance", help="Michel et al. gradient head importance (and iterative pruning)")
    add_model_arguments(importance)
    _add_metric_arguments(importance)
    importance.add_argument("--iterative", type=int, default=0, metavar="STEPS",
                            help="also prune iteratively for STEPS steps and record perf/bias per step")
    importance.add_argument("--fraction", type=float, default=0.1, help="share of heads removed per step")
    importance.add_argument("--scores", default="gradient", choices=("gradient", "ablation"),
                            help="iterative pruning re-scores heads by gradient importance or by ablation")
    importance.add_argument("--out", type=Path, required=True, help="output folder")
    importance.set_defaults(handler=importance_command)

    tradeoff = actions.add_parser("tradeoff", help="FASP over a grid of alpha and gamma: perf and bias of each pruned model")
    tradeoff.add_argument("--run", type=Path, required=True, help="folder of a `bias-lab heads` run")
    add_model_arguments(tradeoff)
    _add_metric_arguments(tradeoff)
    tradeoff.add_argument("--alphas", type=float, nargs="+", help="default 0, 0.02 … 0.2")
    tradeoff.add_argument("--gammas", type=float, nargs="+", help="default 0.2 … 0.7")
    tradeoff.add_argument("--out", type=Path, required=True, help="table (.csv or .parquet)")
    tradeoff.set_defaults(handler=tradeoff_command)


def _positive(args, *names) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise BiasLabError(f"--{name.replace('_', '-')} {value} must be at least 1")


def _metrics(args, loaded):
    """``(perf, bias)`` metrics from the arguments; ``perf`` is None for ``--perf none``. The model's
    kind is checked against both before any data is read or any run exists."""
    from ..data import load_text
    from ..evaluation import load_benchmark_data
    from ..heads.metrics import bias_metric, check_metric_kind, perf_metric
    from ..neurons.prompts import load_prompt_file

    check_metric_kind(loaded, args.perf, label="--perf")
    if args.bias:
        check_metric_kind(loaded, args.bias, bias=True, label="--bias")
    if args.perf == "none":
        perf = None
    elif args.perf in ("mlm-loss", "perplexity"):
        if not args.perf_data:
            raise BiasLabError(f"--perf {args.perf} needs --perf-data: a text file (e.g. wiki.valid.tokens)")
        texts = load_text(args.perf_data, limit=args.limit)
        options = {"batch_size": args.batch_size, "seed": args.seed} if args.perf == "mlm-loss" else {}
        perf = perf_metric(loaded, args.perf, texts, **options)
    else:
        perf = perf_metric(loaded, args.perf, load_benchmark_data("stereoset", args.perf_data))
    bias = None
    if args.bias:
        if args.bias == "ig2-gap":
            if not args.bias_data:
                raise BiasLabError("--bias ig2-gap needs --bias-data: a prompt JSONL file")
            data = load_prompt_file(args.bias_data)[: args.bias_limit]
        else:
            data = load_benchmark_data(args.bias, args.bias_data, limit=args.bias_limit)
        options = {"batch_size": args.batch_size} if args.bias != "ig2-gap" else {}
        bias = bias_metric(loaded, args.bias, data, **options)
    return perf, bias


def score_command(args) -> int:
    from ..heads.ablation import score_heads
    from ..provenance import provenance
    from ..store import RunStore

    _positive(args, "limit", "bias_limit", "batch_size", "ablations_per_pass")
    if args.out is None:
        raise BiasLabError("give --out DIR for the head scores (or use `heads select` / `heads importance`)")
    if args.perf == "none" and not args.bias:
        raise BiasLabError("--perf none scores bias only: give --bias (an encoder: --bias seat --bias-data DIR)")
    loaded = model_from_args(args)
    perf, bias = _metrics(args, loaded)
    config = {"perf": args.perf, "perf_data": args.perf_data, "bias": args.bias, "bias_data": args.bias_data,
              "limit": args.limit, "bias_limit": args.bias_limit, "seed": args.seed}
    run = RunStore().start("heads", config, model=loaded.source, artifact_dir=args.out,
                           provenance=provenance(str(loaded.device), args.seed))
    bar = TqdmProgress("heads")
    with run:
        try:
            scores = score_heads(loaded, perf, bias, use_prefix_cache=not args.no_prefix_cache,
                                 ablations_per_pass=args.ablations_per_pass, run=run, progress=bar)
        finally:
            bar.close()
        run.write_parquet("head_scores.parquet", scores.table)
        run.write_json("run.json", {"id": run.id, "kind": "heads", "config": run.record.config,
                                    "baseline": scores.baseline, "timing": {"scoring_s": round(scores.seconds, 3)},
                                    "model": {"layers": loaded.num_layers, "heads": loaded.num_heads},
                                    "provenance": run.record.provenance})
        run.complete({"heads": len(scores.table), "baseline_perf": scores.baseline["perf"],
                      "baseline_bias": scores.baseline["bias"], "scoring_s": round(scores.seconds, 3)})
    worst = scores.table[scores.table["bias_delta"] < 0].sort_values("bias_delta").head(3)
    baselines = [f"{metric.name} {scores.baseline[key]:.4f}" for metric, key in ((perf, "perf"), (bias, "bias")) if metric]
    print(f"scored {len(scores.table)} heads in {scores.seconds:.1f} s; baseline " + ", ".join(baselines))
    if bias is not None and worst.empty:
        print("no head's removal lowers bias")
    elif bias is not None:
        print("heads whose removal lowers bias most: " + ", ".join(
            f"L{r.layer}H{r.head} ({r.bias_delta:+.4g})" for r in worst.itertuples()))
    print(f"→ {args.out}/head_scores.parquet, run.json")
    return 0


def _load_run(folder: Path) -> tuple[pd.DataFrame, dict]:
    table_path, meta_path = folder / "head_scores.parquet", folder / "run.json"
    if not table_path.is_file() or not meta_path.is_file():
        raise BiasLabError(f"{str(folder)!r} is not a finished heads run (needs head_scores.parquet and run.json)")
    return pd.read_parquet(table_path), json.loads(meta_path.read_text())


def select_command(args) -> int:
    from ..heads.selection import head_magnitudes, pruned_spec, select
    from ..store import write_text_atomic

    table, meta = _load_run(args.run)
    if args.rule in ("fasp", "bias") and table["bias"].isna().all():
        raise BiasLabError(f"rule {args.rule!r} needs bias scores: score the heads with --bias")
    if args.rule in ("fasp", "performance") and table["perf"].isna().all():
        raise BiasLabError(f"rule {args.rule!r} needs a performance score per head, but {str(args.run)!r} was scored "
                           f"with --perf none: {PERF_NEEDED}, or use --rule bias")
    options = {}
    if args.rule == "magnitude":
        from ..models import load_model

        options["magnitudes"] = head_magnitudes(load_model(args.model or meta["config"].get("model")
                                                           or _run_model(args.run), device="cpu"))
    if args.rule == "random":
        options["seed"] = args.seed
    grid = select(table, args.rule, alpha=args.alpha, gamma=args.gamma, **options)
    spec = pruned_spec(grid)
    spec.save(args.out)
    if args.grid:
        write_text_atomic(args.grid, grid.to_csv(index=False))
    counts = grid["status"].value_counts().to_dict()
    print(f"{args.rule}: pruned {counts.get('pruned', 0)}, protected {counts.get('protected', 0)}, "
          f"kept {counts.get('kept', 0)} of {len(grid)} heads → {args.out}")
    return 0


def _run_model(folder: Path) -> str:
    from ..store import RunStore

    return RunStore().get(str(folder)).model


def importance_command(args) -> int:
    from ..data import load_text
    from ..heads.importance import gradient_importance, iterative_pruning
    from ..store import RunStore, write_json_atomic, write_parquet_atomic

    _positive(args, "limit", "batch_size")
    if not args.perf_data:
        raise BiasLabError("heads importance needs --perf-data: a text file whose loss the gates are scored on")
    if args.iterative and args.perf == "none":
        raise BiasLabError("heads importance --iterative records performance per step: give --perf mlm-loss, "
                           "perplexity or stereoset-lms, not none")
    loaded = model_from_args(args)
    require_kind(loaded, ("masked", "causal"), "heads importance",
                 "the gradient importance comes from the LM loss (an encoder can be scored with "
                 "`bias-lab heads --perf none --bias seat`)")
    texts = load_text(args.perf_data, limit=args.limit)
    perf, bias = _metrics(args, loaded) if args.iterative else (None, None)
    run = RunStore().start("head-importance", {"perf_data": args.perf_data, "limit": args.limit, "seed": args.seed,
                                               "iterative": args.iterative, "fraction": args.fraction},
                           model=loaded.source, artifact_dir=args.out)
    with run:
        table = gradient_importance(loaded, texts, batch_size=args.batch_size, seed=args.seed)
        write_parquet_atomic(args.out / "importance.parquet", table)
        summary = {"heads": len(table)}
        if args.iterative:
            with TqdmProgress("iterative pruning") as bar:
                curve = iterative_pruning(loaded, texts, perf, bias, fraction=args.fraction, steps=args.iterative,
                                          batch_size=args.batch_size, seed=args.seed, scores=args.scores,
                                          progress=bar)
            curve["heads"] = curve["heads"].map(json.dumps)
            write_parquet_atomic(args.out / "iterative.parquet", curve)
            summary["steps"] = int(curve["step"].max())
        write_json_atomic(args.out / "run.json", {"id": run.id, "kind": "head-importance", "config": run.record.config})
        run.complete(summary)
    least = table.sort_values("importance").head(5)
    print("least important heads: " + ", ".join(f"L{r.layer}H{r.head} ({r.importance:.3f})" for r in least.itertuples()))
    print(f"→ {args.out}/importance.parquet" + (", iterative.parquet" if args.iterative else ""))
    return 0


def tradeoff_command(args) -> int:
    from ..heads.selection import fasp_tradeoff
    from ..store import write_parquet_atomic, write_text_atomic

    _positive(args, "limit", "batch_size")
    table, _ = _load_run(args.run)
    if table["bias"].isna().all():
        raise BiasLabError("the trade-off needs bias scores: score the heads with --bias")
    if table["perf"].isna().all():
        raise BiasLabError(f"the trade-off prunes by FASP, which needs a performance score per head, but "
                           f"{str(args.run)!r} was scored with --perf none: {PERF_NEEDED}")
    if args.perf == "none":
        raise BiasLabError("the trade-off measures each pruned model's performance: give --perf mlm-loss, perplexity "
                           "or stereoset-lms, not none")
    if args.model is None:
        args.model = _run_model(args.run)
    loaded = model_from_args(args)
    perf, bias = _metrics(args, loaded)
    with TqdmProgress("pruned models") as bar:
        points = fasp_tradeoff(loaded, table, perf, bias, args.alphas, args.gammas, progress=bar)
    if args.out.suffix == ".parquet":
        write_parquet_atomic(args.out, points.assign(pruned=points["pruned"].map(json.dumps)))
    else:
        write_text_atomic(args.out, points.assign(pruned=points["pruned"].map(json.dumps)).to_csv(index=False))
    best = points.sort_values(["bias", "perf"]).iloc[0]
    print(f"{len(points)} grid points, {points['pruned'].map(json.dumps).nunique()} distinct pruned sets; lowest bias "
          f"{best['bias']:.4f} at alpha {best['alpha']}, gamma {best['gamma']} (perf {best['perf']:.4f}) → {args.out}")
    return 0
