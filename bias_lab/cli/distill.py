"""``bias-lab distill``: knowledge distillation of a masked or causal LM into a shallower student."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..progress import TqdmProgress
from .common import positive

EXAMPLES = """\
examples:
  bias-lab distill --teacher bert-base-uncased --layers 0,2,4,7,9,11 --corpus wiki.train.raw --epochs 3 \\
      --accumulate 50 --out runs/distilbert-like
  bias-lab distill --teacher gpt2 --num-layers 6 --init random --corpus openwebtext-1pc.txt --steps 20000 \\
      --out runs/gpt2-6-random
  bias-lab distill --teacher bert-base-uncased --num-layers 4 --corpus text.txt --steps 0 --out runs/init-only

The student is the run folder's model/ (a model folder like any other: `--model runs/distilbert-like`
works in every command and in the app). Re-running the same command resumes an interrupted run.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill", help="distil a model into a shallower student (creates a run)",
        description="Knowledge distillation (the DistilBERT / DistilGPT-2 recipe): the student is the teacher with "
                    "fewer layers, copied from chosen teacher layers or initialised randomly, trained on "
                    "α_ce·T²·KL(teacher ‖ student) + α_lm·(MLM or CLM loss) + α_cos·cosine loss on last hidden states.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, metavar="MODEL", help="hub id or local folder of a masked or causal LM")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own code to run")
    student = parser.add_argument_group("the student")
    student.add_argument("--layers", metavar="I,J,…", help="teacher layers to copy, in order (e.g. 0,2,4,7,9,11); "
                                                          "default: --num-layers evenly spread, first and last included")
    student.add_argument("--num-layers", type=int, metavar="N", help="student depth (default: half the teacher's)")
    student.add_argument("--init", default="teacher", choices=("teacher", "random"),
                         help="copy the teacher's layers and embeddings (default) or initialise randomly")
    student.add_argument("--ffn-width", type=int, metavar="N",
                         help="a narrower FFN: keep the N neurons of each layer with the largest output weights")
    data = parser.add_argument_group("data")
    data.add_argument("--corpus", required=True, metavar="PATH",
                      help="text file (one passage per line) or HF dataset id (its train split); tokenised once and "
                           "cached in the run folder")
    data.add_argument("--max-length", type=int, default=128, help="tokens per training block (128)")
    loss = parser.add_argument_group("loss")
    loss.add_argument("--temperature", type=float, default=2.0, help="softening temperature T (2)")
    loss.add_argument("--alpha-ce", type=float, default=5.0, help="weight of the KL term (5)")
    loss.add_argument("--alpha-lm", type=float, default=2.0, help="weight of the LM loss (2)")
    loss.add_argument("--alpha-cos", type=float, default=1.0, help="weight of the cosine loss (1)")
    loss.add_argument("--lm-loss", choices=("mlm", "clm"), help="MLM (15 %% masking) or CLM; default: the teacher's")
    loss.add_argument("--kl-positions", default="all", choices=("all", "masked"),
                      help="KL over every token (default, as DistilBERT) or only the masked ones (MLM)")
    training = parser.add_argument_group("training")
    length = training.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=int, help="optimizer steps (0: save the initialised student)")
    length.add_argument("--epochs", type=int, help="passes over the corpus")
    training.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (5e-4)")
    training.add_argument("--warmup", type=float, default=0.05, help="fraction of steps with a linear warm-up (0.05)")
    training.add_argument("--batch-size", type=int, default=8, help="blocks per micro-batch (8)")
    training.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimizer step (1; DistilBERT 50)")
    training.add_argument("--max-grad-norm", type=float, default=5.0, help="gradient clipping (5)")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (100)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (re-running into it resumes)")
    parser.set_defaults(handler=run)


def settings_from_args(args):
    from ..compression.distill import DistillSettings
    from ..compression.student import parse_layers

    positive(args, "num_layers", "ffn_width", "epochs", "batch_size", "accumulate", "max_length", "checkpoint_every")
    return DistillSettings(
        layers=tuple(parse_layers(args.layers)) if args.layers is not None else None, num_layers=args.num_layers,
        init=args.init, ffn_width=args.ffn_width, lm_loss=args.lm_loss, kl_positions=args.kl_positions,
        steps=args.steps, epochs=args.epochs, temperature=args.temperature, alpha_ce=args.alpha_ce,
        alpha_lm=args.alpha_lm, alpha_cos=args.alpha_cos, lr=args.lr, warmup=args.warmup, batch_size=args.batch_size,
        accumulate=args.accumulate, max_length=args.max_length, max_grad_norm=args.max_grad_norm, seed=args.seed,
        checkpoint_every=args.checkpoint_every)


def run(args) -> int:
    from ..compression.distill import distill
    from ..models import load_model

    settings = settings_from_args(args)
    teacher = load_model(args.teacher, device=args.device, trust_remote_code=args.trust_remote_code)
    settings.validate(teacher)  # every bad option fails here, before a run folder exists
    with TqdmProgress("distill") as bar:
        result = distill(teacher, args.corpus, args.out, settings, progress=bar)
    summary = result.summary
    print(f"student: {summary['student_layers']} of {summary['teacher_layers']} layers, "
          f"{summary['student_parameters']:,} parameters ({summary['size_ratio']:.0%} of the teacher), "
          f"{summary['speedup']:.2f}× the teacher's tokens/s")
    print(f"KL(teacher ‖ student) per token: {summary['kl_before']:.4f} at initialisation → {summary['kl_after']:.4f} "
          f"after {summary['steps']} steps ({summary['kl_measured_on']})")
    print(f"→ {result.folder} (load the student with --model {result.folder})")
    return 0
