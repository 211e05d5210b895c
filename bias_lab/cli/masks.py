"""``bias-lab masks train|info|evaluate``: pruning masks learned with frozen weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BiasLabError
from ..metrics import BENCHMARKS
from ..progress import TqdmProgress
from .common import (add_actions, add_model_arguments, check_table_file, model_from_args, positive, print_table,
                     require_kind, run_folder)

EXAMPLES = """\
examples:
  bias-lab masks train --model bert-base-uncased --objective kaneko --data news.txt --block head --out runs/mask-head
  bias-lab masks info runs/mask-head
  bias-lab masks evaluate runs/mask-head runs/mask-32 --seat-data seat/ --stereoset-data dev.json --out masks.csv
"""


def register(subparsers) -> None:
    group = subparsers.add_parser(
        "masks", help="pruning masks: train, info, evaluate",
        description="Pruning masks: learn a debiasing mask with the model's weights frozen (a run), show a mask's "
                    "densities and pruned heads, evaluate several masks side by side.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = add_actions(group)

    train = actions.add_parser("train", help="learn a pruning mask against a debiasing objective, weights frozen "
                                             "(creates a run)")
    add_model_arguments(train)
    train.add_argument("--objective", default="kaneko", choices=("kaneko", "masked-debias"))
    train.add_argument("--data", metavar="PATH", help="kaneko: text file (or HF dataset id) the sentences come from; masked-debias: "
                                      "JSONL of {text, text_pair, label, bias_prob[, bias_probs]}")
    train.add_argument("--loss", default="reweight", choices=("reweight", "focal", "poe"),
                       help="masked-debias: how the bias model's probability discounts the task loss")
    train.add_argument("--words", type=Path, help="kaneko: folder of the original Kaneko & Bollegala word lists "
                                                  "(default: bias lab's own lists)")
    train.add_argument("--block", default="32", help="32, 64, 128, … or head, neuron, unstructured")
    train.add_argument("--mode", default="last-token", help="kaneko: {all,first,last,intermediate}-{token,sentence}")
    train.add_argument("--head-qkv", action="store_true",
                       help="with --block head: prune a head's query, key and value rows together (default: value rows)")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lr", type=float, default=0.01, help="learning rate of the scores")
    train.add_argument("--threshold", type=float, default=0.1, help="final threshold τ of the cubic schedule")
    train.add_argument("--l1", type=float, default=0.0, help="weight of an L1 term on σ(scores)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    train.add_argument("--limit", type=int, help="at most N sentences (kaneko) or examples (masked-debias)")
    train.add_argument("--debias-only", action="store_true",
                       help="for comparison: train the weights on the objective instead of a mask (the run folder "
                            "then holds the debiased model)")
    train.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="run folder (re-running into it resumes)")
    train.set_defaults(handler=train_command)

    info = actions.add_parser("info", help="densities per layer and module, and the pruned heads")
    info.add_argument("mask", metavar="MASK", help="a `masks train` run (folder or run id) or a mask file")
    info.add_argument("--model", help="the model the mask belongs to (default: from the mask's metadata)")
    info.set_defaults(handler=info_command)

    report = actions.add_parser("evaluate", help="one row per mask: density, pruned heads and the benchmarks' metrics")
    report.add_argument("masks", nargs="+", metavar="MASK", help="`masks train` runs (folders or run ids) or mask "
                                                                 "files; the unmasked model is the first row")
    add_model_arguments(report)
    data = report.add_argument_group("benchmarks (at least one; each a column group of the table)")
    for name, entry in BENCHMARKS.items():
        data.add_argument(f"--{name}-data", dest=_data_dest(name), metavar="PATH",
                          help=f"{entry.title}: {entry.data}".replace("%", "%%"))
    report.add_argument("--tests", nargs="+", help="SEAT tests to run (default: sent-weat6/7/8)")
    report.add_argument("--limit", type=int, help="the first N items of each benchmark's data (not SEAT)")
    report.add_argument("--glue-run", metavar="RUN", help="a `bias-lab glue` run of these masks: adds each mask's GLUE "
                                                          "average (glue-average) and task scores (glue:<task>)")
    report.add_argument("--out", type=Path, required=True, metavar="FILE", help="table (.csv or .parquet)")
    report.set_defaults(handler=evaluate_command)


def mask_file(value: str) -> Path:
    """A mask given as its file, or as a mask-training run (folder or id)."""
    from ..pruning.train import MaskTrainingResult

    path = Path(value)
    if path.is_file():
        return path
    folder = run_folder(path)
    if not folder.is_dir():
        raise BiasLabError(f"{value!r} is neither a mask file nor a mask-training run folder or run id "
                           "(`bias-lab runs list --kind prune` shows the runs)")
    MaskTrainingResult.require(folder)
    return MaskTrainingResult.mask_file(folder)


def train_command(args) -> int:
    from ..data import load_text
    from ..pruning.kaneko import KanekoObjective, load_word_lists, parse_mode
    from ..pruning.masked_debias import MaskedDebiasObjective, load_examples
    from ..pruning.train import DebiasResult, PruneSettings, train_mask, train_weights

    positive(args, "limit")
    if args.lr <= 0:
        raise BiasLabError(f"--lr {args.lr} must be positive")
    if args.objective == "kaneko":
        if not args.data:
            raise BiasLabError("--objective kaneko needs --data: a text file the sentences come from")
        parse_mode(args.mode)
    elif not args.data:
        raise BiasLabError("--objective masked-debias needs --data: a JSONL file of {text, label, bias_prob} records")
    settings = PruneSettings(block=args.block if not str(args.block).isdigit() else int(args.block), epochs=args.epochs,
                             lr=args.lr, threshold=args.threshold, l1=args.l1, batch_size=args.batch_size,
                             seed=args.seed, checkpoint_every=args.checkpoint_every,
                             head_roles=("query", "key", "value") if args.head_qkv else ("value",))
    settings.validate()
    if args.objective == "kaneko":
        texts = load_text(args.data)
        words = load_word_lists(args.words) if args.words else None
        loaded = model_from_args(args)
        objective = KanekoObjective(loaded, texts, words=words, mode=args.mode, limit=args.limit)
        # "corpus", as the Pruning masks page stores it: the app and the CLI resume each other's runs
        description = {"mode": args.mode, "corpus": args.data, "limit": args.limit,
                       "words": str(args.words) if args.words else "bias-lab"}
    else:
        examples = load_examples(args.data)[: args.limit]
        loaded = model_from_args(args)
        require_kind(loaded, ("classifier",), "--objective masked-debias",
                     "give the fine-tuned classifier it debiases, or use --objective kaneko")
        objective = MaskedDebiasObjective(loaded, examples, loss=args.loss)
        description = {"data": args.data, "loss": args.loss, "limit": args.limit}
    if args.debias_only:
        with TqdmProgress("debias steps") as bar:
            history = train_weights(loaded, objective, args.out, settings, progress=bar, description=description)
        print(f"{len(history)} steps of weight training; final loss {history['loss'].iloc[-1]:.4f} "
              f"→ {args.out} (the debiased model: {DebiasResult.load(args.out).model_path})")
        return 0
    with TqdmProgress("prune steps") as bar:
        result = train_mask(loaded, objective, args.out, settings, progress=bar, description=description)
    density = 100.0 * result.densities["kept"].sum() / result.densities["total"].sum()
    print(f"{len(result.history)} steps; density {density:.1f} %; {int((~result.heads['alive']).sum())} heads pruned")
    print(f"→ {result.folder}")
    return 0


def info_command(args) -> int:
    from ..models import load_model
    from ..pruning.masks import MaskSet, densities, surviving_heads

    path = mask_file(args.mask)
    masks = MaskSet.load(path)
    model = args.model or masks.metadata.get("model")
    if not model:
        raise BiasLabError(f"{path} does not name its model: give --model")
    loaded = load_model(model, device="cpu")
    table = densities(loaded, masks)
    heads = surviving_heads(loaded, masks)
    wide = table.pivot(index="layer", columns="module", values="density").round(1).reset_index()
    print(f"mask {path}: block {masks.block}, objective {masks.metadata.get('objective')}, "
          f"step {masks.metadata.get('step')}; overall density {100 * table['kept'].sum() / table['total'].sum():.1f} %")
    print_table(wide.to_dict("records"), [str(c) for c in wide.columns])
    pruned = heads[~heads["alive"]]
    print(f"pruned heads: {len(pruned)}" + (": " + ", ".join(f"L{r.layer}H{r.head}" for r in pruned.itertuples())
                                           if len(pruned) else ""))
    return 0


def _data_dest(benchmark: str) -> str:
    return f"{benchmark.replace('-', '_')}_data"


def evaluate_command(args) -> int:
    from ..evaluation import load_benchmark_data
    from ..pruning.report import SEAT_TESTS, evaluate_masks
    from ..tables import write_table

    positive(args, "limit")
    check_table_file(args.out)
    sources = {name: getattr(args, _data_dest(name)) for name in BENCHMARKS if getattr(args, _data_dest(name))}
    if not sources:
        raise BiasLabError(f"give at least one of {', '.join(f'--{name}-data' for name in BENCHMARKS)} to evaluate "
                           "the masks on")
    if args.model is None:
        from ..pruning.masks import MaskSet

        args.model = MaskSet.load(mask_file(args.masks[0])).metadata.get("model")
    loaded = model_from_args(args)
    for name in sources:
        require_kind(loaded, BENCHMARKS[name].kinds, f"masks evaluate --{name}-data",
                     "an encoder can be evaluated with --seat-data only" if loaded.kind == "encoder" else "")
    paths = [mask_file(value) for value in args.masks]
    data = {name: load_benchmark_data(name, source, tests=args.tests or list(SEAT_TESTS),
                                      limit=args.limit if BENCHMARKS[name].limit_unit else None)
            for name, source in sources.items()}
    glue = None
    if args.glue_run:  # read before the masks are evaluated: a wrong run fails at once
        from ..finetune.glue_run import GlueResult

        glue = GlueResult.load(run_folder(args.glue_run))
    with TqdmProgress("masks") as bar:
        table = evaluate_masks(loaded, [None, *paths], data, progress=bar)
    if glue is not None:
        from ..finetune.glue_run import glue_columns

        table = glue_columns(table, glue)
    write_table(table, args.out)
    print(table.to_string(index=False))
    print(f"→ {args.out}")
    return 0
