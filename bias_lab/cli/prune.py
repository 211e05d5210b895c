"""``bias-lab prune`` (learn a debiasing mask with frozen weights) and ``bias-lab mask info``."""

from __future__ import annotations

from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import add_model_arguments, model_from_args, print_table, require_kind


def register(subparsers) -> None:
    parser = subparsers.add_parser("prune", help="learn a pruning mask against a debiasing objective (weights frozen)")
    add_model_arguments(parser)
    parser.add_argument("--objective", default="kaneko", choices=("kaneko", "masked-debias"))
    parser.add_argument("--corpus", help="kaneko: text file (or HF dataset id) the sentences come from")
    parser.add_argument("--data", help="masked-debias: JSONL of {text, text_pair, label, bias_prob[, bias_probs]}")
    parser.add_argument("--loss", default="reweight", choices=("reweight", "focal", "poe"),
                        help="masked-debias: how the bias model's probability discounts the task loss")
    parser.add_argument("--words", type=Path, help="folder of the original Kaneko & Bollegala word lists "
                                                  "(default: bias lab's own lists)")
    parser.add_argument("--block", default="32", help="32, 64, 128, … or head, neuron, unstructured")
    parser.add_argument("--mode", default="last-token", help="{all,first,last,intermediate}-{token,sentence}")
    parser.add_argument("--head-qkv", action="store_true",
                        help="with --block head: prune a head's query, key and value rows together (default: value rows)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate of the scores")
    parser.add_argument("--threshold", type=float, default=0.1, help="final threshold τ of the cubic schedule")
    parser.add_argument("--l1", type=float, default=0.0, help="weight of an L1 term on σ(scores)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--limit", type=int, help="at most N corpus sentences")
    parser.add_argument("--debias-only", action="store_true",
                        help="for comparison: train the weights on the objective instead of a mask (writes DIR/model)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (re-running into it resumes)")
    parser.set_defaults(handler=prune_command)

    mask = subparsers.add_parser("mask", help="inspect pruning masks")
    actions = mask.add_subparsers(dest="action", metavar="ACTION", parser_class=type(mask))
    actions.required = True
    info = actions.add_parser("info", help="densities per layer and module, and the pruned heads")
    info.add_argument("mask_file", type=Path)
    info.add_argument("--model", help="the model the mask belongs to (default: from the mask's metadata)")
    info.set_defaults(handler=mask_info_command)
    report = actions.add_parser("evaluate", help="one row per mask: density, pruned heads, SEAT, StereoSet, perplexity")
    report.add_argument("masks", nargs="+", type=Path, help="mask files (the unmasked model is the first row)")
    add_model_arguments(report)
    report.add_argument("--seat", help="SEAT folder (tests sent-weat6/7/8 unless --tests)")
    report.add_argument("--tests", nargs="+", help="SEAT tests to run")
    report.add_argument("--stereoset", help="StereoSet file")
    report.add_argument("--text", help="text file for perplexity")
    report.add_argument("--limit", type=int, help="perplexity: first N lines")
    report.add_argument("--out", type=Path, required=True, help="table (.csv or .parquet)")
    report.set_defaults(handler=mask_evaluate_command)


def prune_command(args) -> int:
    from ..data import load_text
    from ..pruning.kaneko import KanekoObjective, load_word_lists, parse_mode
    from ..pruning.masked_debias import MaskedDebiasObjective, load_examples
    from ..pruning.train import PruneSettings, train_mask, train_weights

    if args.limit is not None and args.limit < 1:
        raise BiasLabError(f"--limit {args.limit} must be at least 1")
    if args.lr <= 0:
        raise BiasLabError(f"--lr {args.lr} must be positive")
    if args.objective == "kaneko":
        if not args.corpus:
            raise BiasLabError("--objective kaneko needs --corpus: a text file the sentences come from")
        parse_mode(args.mode)
    elif not args.data:
        raise BiasLabError("--objective masked-debias needs --data: a JSONL file of {text, label, bias_prob} records")
    settings = PruneSettings(block=args.block if not str(args.block).isdigit() else int(args.block), epochs=args.epochs,
                             lr=args.lr, threshold=args.threshold, l1=args.l1, batch_size=args.batch_size,
                             seed=args.seed, checkpoint_every=args.checkpoint_every,
                             head_roles=("query", "key", "value") if args.head_qkv else ("value",))
    settings.validate()
    if args.objective == "kaneko":
        texts = load_text(args.corpus)
        words = load_word_lists(args.words) if args.words else None
        loaded = model_from_args(args)
        objective = KanekoObjective(loaded, texts, words=words, mode=args.mode, limit=args.limit)
        description = {"mode": args.mode, "corpus": args.corpus, "limit": args.limit,
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
              f"→ {args.out}/model, history.parquet, run.json")
        return 0
    with TqdmProgress("prune steps") as bar:
        result = train_mask(loaded, objective, args.out, settings, progress=bar, description=description)
    density = 100.0 * result.densities["kept"].sum() / result.densities["total"].sum()
    print(f"{len(result.history)} steps; density {density:.1f} %; {int((~result.heads['alive']).sum())} heads pruned")
    print(f"→ {args.out}/mask.safetensors, densities.parquet, history.parquet, run.json")
    return 0


def mask_info_command(args) -> int:
    from ..models import load_model
    from ..pruning.masks import MaskSet, densities, surviving_heads

    masks = MaskSet.load(args.mask_file)
    model = args.model or masks.metadata.get("model")
    if not model:
        raise BiasLabError(f"{args.mask_file} does not name its model: give --model")
    loaded = load_model(model, device="cpu")
    table = densities(loaded, masks)
    heads = surviving_heads(loaded, masks)
    wide = table.pivot(index="layer", columns="module", values="density").round(1).reset_index()
    print(f"mask {args.mask_file}: block {masks.block}, objective {masks.metadata.get('objective')}, "
          f"step {masks.metadata.get('step')}; overall density {100 * table['kept'].sum() / table['total'].sum():.1f} %")
    print_table(wide.to_dict("records"), [str(c) for c in wide.columns])
    pruned = heads[~heads["alive"]]
    print(f"pruned heads: {len(pruned)}" + (": " + ", ".join(f"L{r.layer}H{r.head}" for r in pruned.itertuples())
                                           if len(pruned) else ""))
    return 0


def mask_evaluate_command(args) -> int:
    from ..data import load_seat, load_stereoset, load_text
    from ..pruning.report import SEAT_TESTS, evaluate_masks
    from ..store import write_parquet_atomic, write_text_atomic

    if not (args.seat or args.stereoset or args.text):
        raise BiasLabError("give at least one of --seat, --stereoset, --text to evaluate the masks on")
    if args.model is None:
        from ..pruning.masks import MaskSet

        args.model = MaskSet.load(args.masks[0]).metadata.get("model")
    loaded = model_from_args(args)
    if args.stereoset or args.text:
        require_kind(loaded, ("masked", "causal"), "mask evaluate --stereoset/--text",
                     "an encoder can be evaluated with --seat only")
    seat = load_seat(args.seat, tests=args.tests or list(SEAT_TESTS)) if args.seat else None
    stereoset = load_stereoset(args.stereoset) if args.stereoset else None
    texts = load_text(args.text, limit=args.limit) if args.text else None
    table = evaluate_masks(loaded, [None, *args.masks], seat=seat, stereoset=stereoset, texts=texts)
    if args.out.suffix == ".parquet":
        write_parquet_atomic(args.out, table)
    else:
        write_text_atomic(args.out, table.to_csv(index=False))
    print(table.to_string(index=False))
    return 0
