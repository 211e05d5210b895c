"""``bias-lab neurons attribute|select|verify|compare``: the bias-neuron method (IG2 + BNS)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BiasLabError
from ..neurons import ENGINES, METHODS, TARGETS, IG2Settings
from ..neurons.prompts import MODIFIER_TYPES
from ..progress import TqdmProgress
from .common import (add_actions, add_model_arguments, check_table_file, model_from_args, positive, require_kind,
                     run_folder)

MASKED_ONLY = "load a masked LM such as bert-base-uncased (IG2 compares the demographics' probabilities at [MASK])"

EXAMPLES = """\
examples:
  bias-lab neurons attribute --model bert-base-uncased --dimension gender --modifier N --pair female male --out runs/ig2-gender
  bias-lab neurons select --run runs/ig2-gender --spec bns.json
  bias-lab neurons verify --run runs/ig2-gender
  bias-lab neurons compare runs/ig2-bert runs/ig2-distilbert --labels bert distilbert
"""


def register(subparsers) -> None:
    group = subparsers.add_parser(
        "neurons", help="bias neurons: attribute (IG2), select, verify, compare",
        description="The bias-neuron method: Integrated Gap Gradients attribute a demographic gap to FFN neurons "
                    "(a run), bias neurons are selected from a run, verified against random neurons and compared "
                    "across runs.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = add_actions(group)

    attribute = actions.add_parser("attribute", help="Integrated Gap Gradients of every prompt (creates a run)",
                                   description="Attribute |P(d1) − P(d2)| at the mask to every FFN neuron, prompt "
                                               "by prompt, into a run folder; re-running into it resumes.")
    add_model_arguments(attribute)
    source = attribute.add_argument_group("prompts (a file, or one JUT of the IG2 dataset)")
    source.add_argument("--data", type=Path, metavar="PROMPTS.jsonl",
                        help="JSONL: {\"id\", \"prompt\" with [MASK], \"pair\": [d1, d2]} per line")
    source.add_argument("--dimension", help="e.g. gender, ethnicity, 'physical appearance'")
    source.add_argument("--modifier", choices=tuple(MODIFIER_TYPES), help="modifier type")
    source.add_argument("--pair", nargs=2, metavar=("D1", "D2"), help="the two demographics")
    source.add_argument("--source-dir", type=Path,
                        help="folder with the original IG2 templates, demographics and modifier lists")
    attribute.add_argument("--out", type=Path, required=True, metavar="DIR",
                           help="run folder (re-running into it resumes)")
    attribute.add_argument("--steps", type=int, default=20, help="integration steps m (default 20)")
    attribute.add_argument("--method", default="riemann_right", choices=METHODS)
    attribute.add_argument("--target", default="abs", choices=TARGETS,
                           help="abs |P(d1)−P(d2)|, signed, or d1/d2 (plain IG, for Union_IG)")
    attribute.add_argument("--engine", default="fast", choices=ENGINES)
    attribute.add_argument("--batch-size", type=int, help="most sequences per pass (default: from free memory)")
    attribute.add_argument("--limit", type=int, help="attribute only the first N prompts")
    attribute.set_defaults(handler=attribute_command)

    select = actions.add_parser("select", help="select bias neurons from an IG2 run (stored in the run folder)")
    select.add_argument("--run", type=Path, required=True, metavar="RUN", help="IG2 run folder or run id")
    select.add_argument("--prompt-ratio", type=float, default=0.2, help="per prompt: score ≥ ratio × max (0.2)")
    select.add_argument("--bag-start", type=float, default=0.7, help="per bag: start share of prompts (0.7)")
    select.add_argument("--bag-step", type=float, default=0.05)
    select.add_argument("--bag-rounds", type=int, default=6)
    select.add_argument("--bag-min-prompts", type=int, default=3)
    select.add_argument("--jut-ratio", type=float, default=0.1, help="per JUT: share of bags (0.1)")
    select.add_argument("--union-with", type=Path, metavar="RUN_D2",
                        help="Union_IG baseline: RUN is a --target d1 run, RUN_D2 (folder or id) the --target d2 "
                             "run of the same prompts")
    select.add_argument("--out", type=Path, metavar="FILE",
                        help="write the table (.csv or .parquet; analyses beside it) here instead of into the run folder")
    select.add_argument("--spec", type=Path, metavar="SPEC.json", help="also write the BNS intervention spec (JSON) here")
    select.add_argument("--scale", type=float, default=0.0, help="scale in the spec: 0 suppresses, 2 amplifies")
    select.set_defaults(handler=select_command)

    verify = actions.add_parser("verify", help="gap change when bias neurons are suppressed/amplified vs random neurons")
    verify.add_argument("--run", type=Path, required=True, metavar="RUN",
                        help="IG2 run folder or run id (its selected bias neurons)")
    verify.add_argument("--neurons", type=Path, metavar="FILE", help="a bias-neuron table of your own instead (needs --out)")
    verify.add_argument("--model", help="model (default: the run's model)")
    verify.add_argument("--device", default="auto")
    verify.add_argument("--draws", type=int, default=5, help="random-neuron draws (default 5)")
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--out", type=Path, metavar="FILE", help="result table (.csv or .parquet); default: stored with the run's "
                                                 "selection")
    verify.set_defaults(handler=verify_command)

    compare = actions.add_parser("compare", help="bias neurons per layer of several runs (the migration view)")
    compare.add_argument("tables", nargs="+", metavar="TABLE|RUN",
                         help="bias-neuron tables (.csv/.parquet), or IG2 run folders or run ids (their selection)")
    compare.add_argument("--labels", nargs="+", help="a name per table (default: file or run names)")
    compare.add_argument("--layers", type=int, help="number of layers of the models (default: from the runs)")
    compare.add_argument("--edge", type=int, help="layers counted as shallowest / deepest (default: a quarter of "
                                                  "the layers, at least 1: 3 of 12)")
    compare.add_argument("--out", type=Path, metavar="FILE", help="per-layer table (.csv or .parquet)")
    compare.set_defaults(handler=compare_command)


def _prompts_from_args(args):
    from ..neurons.prompts import builtin_source, ig2_prompts, load_prompt_file, load_source_dir

    if args.data is not None:
        if any(v is not None for v in (args.dimension, args.modifier, args.pair)):
            raise BiasLabError("give either --data or --dimension/--modifier/--pair, not both")
        return load_prompt_file(args.data), {"prompts_file": str(args.data)}
    if args.dimension is None or args.modifier is None or args.pair is None:
        raise BiasLabError("give --data PROMPTS.jsonl, or all of --dimension, --modifier and --pair")
    source = load_source_dir(args.source_dir) if args.source_dir else builtin_source()
    prompts = ig2_prompts(args.dimension, args.modifier, args.pair[0], args.pair[1], source=source)
    return prompts, {"dimension": args.dimension, "modifier": args.modifier, "pair": list(args.pair),
                     "source": source.name}


def attribute_command(args) -> int:
    from ..neurons import prepare_prompts, run_ig2

    positive(args, "limit", "batch_size", "steps")
    settings = IG2Settings(steps=args.steps, method=args.method, target=args.target, engine=args.engine,
                           batch_size=args.batch_size)
    settings.validate()
    prompts, description = _prompts_from_args(args)
    if args.limit is not None:
        prompts = prompts[: args.limit]
        description["limit"] = args.limit
    loaded = model_from_args(args)
    require_kind(loaded, ("masked",), "neurons attribute", MASKED_ONLY)
    preparation = prepare_prompts(loaded, prompts)
    if preparation.skipped:
        print(f"skipped {len(prompts) - len(preparation.prompts)} of {len(prompts)} prompts: "
              f"{preparation.describe_skipped()}", file=sys.stderr)
    with TqdmProgress("IG2 prompts") as bar:
        result = run_ig2(loaded, prompts, args.out, settings, progress=bar, description=description)
    print(f"attributed {len(result.prompts)} prompts in {result.config['timing']['attribution_s']:.1f} s "
          f"→ {result.folder}")
    return 0


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


def select_command(args) -> int:
    from ..neurons import SelectionSettings, neuron_spec
    from ..neurons.run import IG2Result, select_in_run

    check_table_file(args.out)
    folder = run_folder(args.run)
    result = IG2Result.load(folder)
    settings = SelectionSettings(prompt_ratio=args.prompt_ratio, bag_start=args.bag_start, bag_step=args.bag_step,
                                 bag_rounds=args.bag_rounds, bag_min_prompts=args.bag_min_prompts,
                                 jut_ratio=args.jut_ratio)
    other = None
    if args.union_with is not None:
        other = IG2Result.load(run_folder(args.union_with))
        _check_union_targets(args, result, other)
    selection = select_in_run(result, settings, union_with=other)
    table = selection.table
    written = selection.save(folder, table=args.out)
    if args.spec:
        neuron_spec(table, args.scale).save(args.spec)
    for jut, group in table.groupby("jut"):
        print(f"{jut}: {len(group)} bias neurons " + ", ".join(f"L{r.layer}:{r.neuron}" for r in group.head(10).itertuples())
              + (" …" if len(group) > 10 else ""))
    if table.empty:
        print("no bias neurons pass the thresholds")
    print(f"→ {written}" + (f", {args.spec}" if args.spec else ""))
    return 0


def _neuron_table(value: str):
    """A bias-neuron table given as its file, or as an IG2 run (folder or id) holding a selection:
    (table, default label, the run's layer count if known)."""
    from ..neurons.run import BiasNeuronSelection, IG2Result
    from ..tables import read_table

    path = Path(value)
    if path.is_file():
        return read_table(path), path.stem, None
    folder = run_folder(path)
    if not folder.is_dir():
        raise BiasLabError(f"{value!r} is neither a bias-neuron table nor an IG2 run folder or run id "
                           "(`bias-lab runs list --kind ig2` shows the runs)")
    return (BiasNeuronSelection.load(folder).table, path.name if path.is_dir() else value,
            IG2Result.layer_count(folder))


def _layers(args, known: list[int | None]) -> int:
    if args.layers is not None:
        positive(args, "layers")
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
    from ..tables import write_table

    check_table_file(args.out)
    sources = [_neuron_table(value) for value in args.tables]
    labels = args.labels or [label for _, label, _ in sources]
    if len(labels) != len(args.tables):
        raise BiasLabError(f"{len(labels)} labels for {len(args.tables)} tables: give one label per table")
    layers = _layers(args, [count for _, _, count in sources])
    edge = _edge(args, layers)
    tables = {label: table for label, (table, _, _) in zip(labels, sources)}
    for label, table in tables.items():
        if not table.empty and table["layer"].max() >= layers:
            raise BiasLabError(f"table {label!r} has layer {table['layer'].max()}, but --layers is {layers}")
    per_layer, summary = compare_layer_distributions(tables, layers, edge=edge)
    if args.out:
        write_table(per_layer, args.out)
    wide = per_layer.pivot(index="layer", columns="model", values="count")[labels]
    print(wide.to_string())
    unit = "layer" if edge == 1 else f"{edge} layers"
    for row in summary.itertuples():
        print(f"{row.model}: {row.neurons} neurons, {row.shallow_share:.0%} in the shallowest {unit}, "
              f"{row.deep_share:.0%} in the deepest {unit}")
    if args.out:
        print(f"→ {args.out}")
    return 0


def verify_command(args) -> int:
    from ..models import load_model
    from ..neurons import prepare_prompts, verify_neurons
    from ..neurons.run import BiasNeuronSelection, IG2Result
    from ..tables import read_table, write_table

    positive(args, "draws")
    check_table_file(args.out)
    if args.neurons is not None and args.out is None:
        raise BiasLabError("--neurons verifies a table of your own, not the run's selection: give --out FILE "
                           "(.csv or .parquet) for the result")
    folder = run_folder(args.run)
    result = IG2Result.load(folder)
    selection = None
    if args.neurons is not None:
        table = read_table(args.neurons, "select bias neurons with `bias-lab neurons select --run RUN --out FILE`")
    else:
        selection = BiasNeuronSelection.load(folder)
        table = selection.table
    loaded = load_model(args.model or result.model, device=args.device)
    require_kind(loaded, ("masked",), "neurons verify", MASKED_ONLY)
    prepared = prepare_prompts(loaded, result.prompt_list()).prompts
    with TqdmProgress("verify JUTs") as bar:
        frame = verify_neurons(loaded, prepared, table, draws=args.draws, seed=args.seed, progress=bar)
    if args.out is not None:
        write_table(frame, args.out)
        written = args.out
    else:
        selection.verification = frame
        selection.save(folder)
        written = folder
    for row in frame.itertuples():
        spread = f" ± {row.change_pct_sd:.2f}" if row.method == "random" else ""
        print(f"{row.jut:<24} {row.mode:<9} {row.method:<7} {row.neurons:>4} neurons  gap {row.change_pct_mean:+.2f}%{spread}")
    print(f"→ {written}")
    return 0
