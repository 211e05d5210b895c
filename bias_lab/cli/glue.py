"""``bias-lab glue``: GLUE of a model with no mask and under each mask, fine-tuned per task."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import positive

EXAMPLES = """\
examples:
  bias-lab glue --model bert-base-uncased --mask runs/mask-head runs/mask-32 --out runs/glue
  bias-lab glue --model bert-base-uncased --mask runs/mask-head --tasks rte mrpc stsb --data glue/ --out runs/glue-small
  bias-lab glue --model bert-base-uncased --mask runs/mask-head --tasks sst2 --train-scores --out runs/glue-scores
"""


def register(subparsers) -> None:
    from ..finetune.glue import DEFAULT_TASKS, TASKS

    parser = subparsers.add_parser(
        "glue", help="GLUE dev scores of a model and of each mask on it, fine-tuned per task (creates a run)",
        description="For the unmasked model and each mask: fine-tune a classification head and the weights on each "
                    "GLUE task with the mask held fixed (--train-scores: learn the mask's scores too), score the dev "
                    "split(s) with the task's metrics (CoLA Matthews; STS-B Pearson/Spearman; MRPC, QQP F1 and "
                    "accuracy; MNLI matched/mismatched accuracy; others accuracy; in points) and report the GLUE "
                    "average (WNLI left out unless --wnli). Hugging Face run_glue.py's defaults. Resumable per "
                    "(mask, task): re-running the command into the same --out continues.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="the model the masks were learned on: hub id or local folder (a base model gets a new "
                             "head per task; default: $BIAS_LAB_MODEL or bert-base-uncased)")
    parser.add_argument("--mask", nargs="+", default=[], metavar="[NAME=]MASK",
                        help="`masks train` runs (folders or run ids) or mask files, optionally named (NAME=MASK)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK",
                        help=f"GLUE tasks among {', '.join(TASKS)} (default: {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--wnli", action="store_true", help="also run WNLI and count it in the average")
    parser.add_argument("--train-scores", action="store_true",
                        help="learn each mask's scores while fine-tuning instead of holding the mask fixed")
    parser.add_argument("--data", metavar="DIR",
                        help="a local GLUE folder of <task>/<split>.jsonl files with the Hub's columns "
                             "(default: the Hub's nyu-mll/glue)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate of the weights (linear decay to 0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per example")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--score-lr", type=float, default=0.01, help="with --train-scores: learning rate of the scores")
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="with --train-scores: a block is kept while σ(score) > threshold")
    parser.add_argument("--train-limit", type=int, help="the first N training examples of each task")
    parser.add_argument("--eval-limit", type=int, help="the first N examples of each dev split")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    parser.add_argument("--save-models", action="store_true",
                        help="also save each fine-tuned classifier (its mask written into the weights) under "
                             "RUN/models/<mask>/<task>/")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own code to run")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (re-running into it resumes)")
    parser.set_defaults(handler=glue_command)


def named_masks(values: list[str]) -> tuple[list[Path], list[str | None]]:
    """``[NAME=]MASK`` arguments → (mask files, names); a mask is a file or a ``masks train`` run."""
    from .masks import mask_file

    paths, names = [], []
    for value in values:
        name, separator, rest = value.partition("=")
        if separator and name and "/" not in name and not Path(value).exists():
            names.append(name)
            value = rest
        else:
            names.append(None)
        paths.append(mask_file(value))
    return paths, names


def glue_command(args) -> int:
    from ..finetune.glue import WNLI_NOTE
    from ..finetune.glue_run import run_glue
    from ..finetune.train import FinetuneSettings
    from ..models import default_model

    positive(args, "train_limit", "eval_limit")
    settings = FinetuneSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                                seed=args.seed, weight_decay=args.weight_decay, train_scores=args.train_scores,
                                score_lr=args.score_lr, threshold=args.threshold,
                                checkpoint_every=args.checkpoint_every)
    settings.validate()
    if args.train_scores and not args.mask:
        raise BiasLabError("--train-scores learns the scores of the masks: give at least one --mask")
    paths, names = named_masks(args.mask)
    with TqdmProgress("fine-tuning steps") as bar:
        result = run_glue(args.model or default_model(), paths, args.out, tasks=args.tasks, wnli=args.wnli,
                          settings=settings, data=args.data, train_limit=args.train_limit, eval_limit=args.eval_limit,
                          names=names, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                          save_models=args.save_models, progress=bar)
    table = result.scores().round(2)
    print(table.to_string(index=False))
    print(f"GLUE average over {len([c for c in table.columns if c not in ('name', 'density', 'average')])} task(s)"
          + ("" if result.wnli else f"; {WNLI_NOTE}"))
    print(f"→ {result.folder}")
    return 0
