"""``bias-lab ig2``, ``bias-lab bias-neurons``, ``bias-lab verify``: bias neurons from the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ..neurons import ENGINES, METHODS, TARGETS, IG2Settings
from ..errors import BiasLabError
from ..progress import TqdmProgress
from ..neurons.prompts import MODIFIER_TYPES, builtin_source, ig2_prompts, load_prompt_file, load_source_dir
from .common import add_model_arguments, model_from_args, require_kind

MASKED_ONLY = "load a masked LM such as bert-base-uncased (IG2 compares the demographics' probabilities at [MASK])"


def register(subparsers) -> None:
    parser = subparsers.add_parser("ig2", help="Integrated Gap Gradients: attribute a demographic gap to FFN neurons")
    add_model_arguments(parser)
    source = parser.add_argument_group("prompts (a file, or one JUT of the IG2 dataset)")
    source.add_argument("--prompts", type=Path, help="JSONL: {\"id\", \"prompt\" with [MASK], \"pair\": [d1, d2]} per line")
    source.add_argument("--dimension", help="e.g. gender, ethnicity, 'physical appearance'")
    source.add_argument("--modifier", choices=tuple(MODIFIER_TYPES), help="modifier type")
    source.add_argument("--pair", nargs=2, metavar=("D1", "D2"), help="the two demographics")
    source.add_argument("--source-dir", type=Path, help="folder with the original IG2 templates, demographics and modifier lists")
    parser.add_argument("--out", type=Path, required=True, help="run folder (re-running into it resumes)")
    parser.add_argument("--steps", type=int, default=20, help="integration steps m (default 20)")
    parser.add_argument("--method", default="riemann_right", choices=METHODS)
    parser.add_argument("--target", default="abs", choices=TARGETS, help="abs |P(d1)−P(d2)|, signed, or d1/d2 (plain IG)")
    parser.add_argument("--engine", default="fast", choices=ENGINES)
    parser.add_argument("--batch-size", type=int, help="most sequences per pass (default: from free memory)")
    parser.add_argument("--limit", type=int, help="attribute only the first N prompts")
    parser.set_defaults(handler=run_ig2_command)

    select = subparsers.add_parser("bias-neurons", help="select bias neurons from an IG2 run")
    select.add_argument("--run", type=Path, required=True, help="IG2 run folder or run id")
    select.add_argument("--prompt-ratio", type=float, default=0.2, help="per prompt: score ≥ ratio × max (0.2)")
    select.add_argument("--bag-start", type=float, default=0.7, help="per bag: start share of prompts (0.7)")
    select.add_argument("--bag-step", type=float, default=0.05)
    select.add_argument("--bag-rounds", type=int, default=6)
    select.add_argument("--bag-min-prompts", type=int, default=3)
    select.add_argument("--jut-ratio", type=float, default=0.1, help="per JUT: share of bags (0.1)")
    select.add_argument("--union-with", type=Path, metavar="RUN_D2",
                        help="Union_IG baseline: RUN is a --target d1 run, RUN_D2 (folder or id) the --target d2 "
                             "run of the same prompts")
    select.add_argument("--out", type=Path, help="table file (.csv or .parquet); default RUN/bias_neurons.csv")
    select.add_argument("--spec", type=Path, help="also write the BNS intervention spec (JSON) here")
    select.add_argument("--scale", type=float, default=0.0, help="scale in the spec: 0 suppresses, 2 amplifies")
    select.set_defaults(handler=bias_neurons_command)

    compare = subparsers.add_parser("compare-neurons", help="bias neurons per layer of several runs (the migration view)")
    compare.add_argument("tables", nargs="+", help="bias-neuron tables (from bias-neurons), or IG2 run folders or "
                                                    "run ids (their bias_neurons.csv)")
    compare.add_argument("--labels", nargs="+", help="a name per table (default: file or run names)")
    compare.add_argument("--layers", type=int, help="number of layers of the models (default: from the runs)")
    compare.add_argument("--edge", type=int, help="layers counted as shallowest / deepest (default: a quarter of "
                                                  "the layers, at least 1: 3 of 12)")
    compare.add_argument("--out", type=Path, help="per-layer table (.csv or .parquet)")
    compare.set_defaults(handler=compare_command)

    verify = subparsers.add_parser("verify", help="gap change when bias neurons are suppressed/amplified vs random neurons")
    verify.add_argument("--run", type=Path, required=True, help="IG2 run folder or run id (its bias_neurons.csv is used)")
    verify.add_argument("--neurons", type=Path, help="bias-neuron table (default RUN/bias_neurons.csv)")
    verify.add_argument("--model", help="model (default: the run's model)")
    verify.add_argument("--device", default="auto")
    verify.add_argument("--draws", type=int, default=5, help="random-neuron draws (default 5)")
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--out", type=Path, help="result table (default RUN/verification.csv)")
    verify.set_defaults(handler=verify_command)


def _prompts_from_args(args):
    if args.prompts is not None:
        if any(v is not None for v in (args.dimension, args.modifier, args.pair)):
            raise BiasLabError("give either --prompts or --dimension/--modifier/--pair, not both")
        return load_prompt_file(args.prompts), {"prompts_file": str(args.prompts)}
    if args.dimension is None or args.modifier is None or args.pair is None:
        raise BiasLabError("give --prompts FILE, or all of --dimension, --modifier and --pair")
    source = load_source_dir(args.source_dir) if args.source_dir else builtin_source()
    prompts = ig2_prompts(args.dimension, args.modifier, args.pair[0], args.pair[1], source=source)
    return prompts, {"dimension": args.dimension, "modifier": args.modifier, "pair": list(args.pair),
                     "source": source.name}


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise BiasLabError(f"--{name} {value} must be at least 1")


def run_ig2_command(args) -> int:
    from ..neurons.run import run_ig2

    _positive("limit", args.limit)
    _positive("batch-size", args.batch_size)
    _positive("steps", args.steps)
    settings = IG2Settings(steps=args.steps, method=args.method, target=args.target, engine=args.engine,
                           batch_size=args.batch_size)
    settings.validate()
    prompts, description = _prompts_from_args(args)
    if args.limit is not None:
        prompts = prompts[: args.limit]
        description["limit"] = args.limit
    loaded = model_from_args(args)
    require_kind(loaded, ("masked",), "ig2", MASKED_ONLY)
    from ..neurons.prompts import prepare_prompts

    skipped = prepare_prompts(loaded, prompts)
    if skipped.skipped:
        print(f"skipped {len(prompts) - len(skipped.prompts)} of {len(prompts)} prompts: {skipped.describe_skipped()}",
              file=sys.stderr)
    with TqdmProgress("IG2 prompts") as bar:
        result = run_ig2(loaded, prompts, args.out, settings, progress=bar, description=description)
    print(f"attributed {len(result.prompts)} prompts in {result.config['timing']['attribution_s']:.1f} s "
          f"→ {args.out}/attributions.safetensors, prompts.parquet, run.json")
    return 0


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    from ..store import write_parquet_atomic, write_text_atomic

    if path.suffix == ".parquet":
        write_parquet_atomic(path, frame)
    elif path.suffix == ".csv":
        write_text_atomic(path, frame.to_csv(index=False))
    else:
        raise BiasLabError(f"table file {str(path)!r} must end in .csv or .parquet")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BiasLabError(f"table {str(path)!r} does not exist: run `bias-lab bias-neurons --run RUN` first")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _run_folder(value: Path) -> Path:
    """An IG2 run given as its folder or as its run id (what `bias-lab runs list` shows)."""
    from ..errors import RunStoreError
    from ..store import RunStore

    if value.is_dir():
        return value
    try:
        return RunStore().get(str(value)).artifact_dir
    except RunStoreError:
        return value  # load_ig2_run says what the folder lacks


def _target(result) -> str | None:
    return result.config.get("config", {}).get("target")


def _check_union_targets(args, result, other) -> None:
    """Union_IG joins plain IG of d1 and of d2: IG2 runs (abs, signed) or a swapped pair would give
    a table that looks right and means something else."""
    targets = (_target(result), _target(other))
    if targets != ("d1", "d2"):
        raise BiasLabError(f"--union-with builds Union_IG from plain-IG runs: --run must be a --target d1 run and "
                           f"--union-with a --target d2 run of the same prompts, but --run {args.run} has target "
                           f"{targets[0]} and --union-with {args.union_with} has target {targets[1]}")


def bias_neurons_command(args) -> int:
    from ..neurons.run import load_ig2_run
    from ..neurons import (SelectionSettings, intersection_statistics, neuron_spec, neurons_per_dimension,
                           neurons_per_layer, select_bias_neurons, union_ig)
    from ..store import write_json_atomic

    args.run = _run_folder(args.run)
    result = load_ig2_run(args.run)
    settings = SelectionSettings(prompt_ratio=args.prompt_ratio, bag_start=args.bag_start, bag_step=args.bag_step,
                                 bag_rounds=args.bag_rounds, bag_min_prompts=args.bag_min_prompts,
                                 jut_ratio=args.jut_ratio)
    if args.union_with is not None:
        other = load_ig2_run(_run_folder(args.union_with))
        _check_union_targets(args, result, other)
        if other.prompts["id"].tolist() != result.prompts["id"].tolist():
            raise BiasLabError(f"{args.union_with} attributes other prompts than {args.run}: Union_IG needs the same prompts")
        table = union_ig(result.scores, other.scores, result.prompts, settings)
    else:
        table = select_bias_neurons(result.scores, result.prompts, settings)
    out = args.out or args.run / ("union_ig_neurons.csv" if args.union_with else "bias_neurons.csv")
    _write_table(table, out)
    analyses = {
        "settings": settings.to_dict(),
        "per_layer": neurons_per_layer(table, result.num_layers).to_dict("records"),
        "per_dimension": neurons_per_dimension(table, result.prompts).to_dict("records"),
        "intersections": intersection_statistics(result.scores, result.prompts, settings).to_dict("records"),
    }
    write_json_atomic(out.with_name(out.stem + "_analyses.json"), analyses)
    if args.spec:
        neuron_spec(table, args.scale).save(args.spec)
    for jut, group in table.groupby("jut"):
        print(f"{jut}: {len(group)} bias neurons " + ", ".join(f"L{r.layer}:{r.neuron}" for r in group.head(10).itertuples())
              + (" …" if len(group) > 10 else ""))
    if table.empty:
        print("no bias neurons pass the thresholds")
    print(f"→ {out}" + (f", {args.spec}" if args.spec else ""))
    return 0


def _run_layers(folder: Path) -> int | None:
    """The layer count of an IG2 run, from its attributions' header (the scores stay on disk)."""
    from safetensors import safe_open

    try:
        with safe_open(str(folder / "attributions.safetensors"), "pt") as attributions:
            return int(attributions.get_slice("ig2").get_shape()[1])
    except Exception:  # not an IG2 run folder (or an unreadable one): the layers must be given
        return None


def _neuron_table(value: str) -> tuple[Path, str, int | None]:
    """A bias-neuron table given as its file, or as an IG2 run (folder or id) holding one:
    (table file, default label, the run's layer count if known)."""
    path = Path(value)
    if path.is_file():
        return path, path.stem, None
    folder = _run_folder(path)
    if not folder.is_dir():
        raise BiasLabError(f"{value!r} is neither a bias-neuron table nor an IG2 run folder or run id "
                           "(`bias-lab runs list --kind ig2` shows the runs)")
    table = folder / "bias_neurons.csv"
    if not table.is_file():
        raise BiasLabError(f"run {value!r} has no bias_neurons.csv: run `bias-lab bias-neurons --run {folder}` first")
    return table, path.name if path.is_dir() else value, _run_layers(folder)


def _layers(args, known: list[int | None]) -> int:
    if args.layers is not None:
        _positive("layers", args.layers)
        return args.layers
    counts = sorted({n for n in known if n is not None})
    if len(counts) != 1:
        found = f"the runs have {', '.join(map(str, counts))} layers" if counts else "tables do not record it"
        raise BiasLabError(f"give --layers, the number of layers of the models ({found})")
    return counts[0]


def _edge(args, layers: int) -> int:
    from ..neurons import shallow_deep_edge

    if layers < 2:
        raise BiasLabError(f"--layers {layers}: telling shallow from deep layers needs at least 2 layers")
    if args.edge is not None and not 1 <= args.edge <= layers // 2:
        raise BiasLabError(f"--edge {args.edge} on a {layers}-layer model: shallowest and deepest layers must not "
                           f"overlap, use 1–{layers // 2}")
    return shallow_deep_edge(layers, args.edge)


def compare_command(args) -> int:
    from ..neurons import compare_layer_distributions

    sources = [_neuron_table(value) for value in args.tables]
    labels = args.labels or [label for _, label, _ in sources]
    if len(labels) != len(args.tables):
        raise BiasLabError(f"{len(labels)} labels for {len(args.tables)} tables: give one label per table")
    layers = _layers(args, [count for _, _, count in sources])
    edge = _edge(args, layers)
    tables = {label: _read_table(path) for label, (path, _, _) in zip(labels, sources)}
    for label, table in tables.items():
        if not table.empty and table["layer"].max() >= layers:
            raise BiasLabError(f"table {label!r} has layer {table['layer'].max()}, but --layers is {layers}")
    per_layer, summary = compare_layer_distributions(tables, layers, edge=edge)
    if args.out:
        _write_table(per_layer, args.out)
    wide = per_layer.pivot(index="layer", columns="model", values="count")[labels]
    print(wide.to_string())
    unit = "layer" if edge == 1 else f"{edge} layers"
    for row in summary.itertuples():
        print(f"{row.model}: {row.neurons} neurons, {row.shallow_share:.0%} in the shallowest {unit}, "
              f"{row.deep_share:.0%} in the deepest {unit}")
    return 0


def verify_command(args) -> int:
    from ..neurons.run import load_ig2_run
    from ..models import load_model
    from ..neurons import verify_neurons
    from ..neurons.prompts import Prompt, prepare_prompts

    _positive("draws", args.draws)
    args.run = _run_folder(args.run)
    result = load_ig2_run(args.run)
    table = _read_table(args.neurons or args.run / "bias_neurons.csv")
    loaded = load_model(args.model or result.config["config"]["model"], device=args.device)
    require_kind(loaded, ("masked",), "verify", MASKED_ONLY)
    columns = ["id", "prompt", "d1", "d2", "dimension", "modifier_type", "modifier", "template"]
    prompts = [Prompt(**{c: (row[c] if c != "template" else int(row[c])) for c in columns})
               for row in result.prompts[columns].to_dict("records")]
    prepared = prepare_prompts(loaded, prompts).prompts
    with TqdmProgress("verify JUTs") as bar:
        frame = verify_neurons(loaded, prepared, table, draws=args.draws, seed=args.seed, progress=bar)
    out = args.out or args.run / "verification.csv"
    _write_table(frame, out)
    for row in frame.itertuples():
        spread = f" ± {row.change_pct_sd:.2f}" if row.method == "random" else ""
        print(f"{row.jut:<24} {row.mode:<9} {row.method:<7} {row.neurons:>4} neurons  gap {row.change_pct_mean:+.2f}%{spread}")
    print(f"→ {out}")
    return 0
