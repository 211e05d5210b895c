"""``bias-lab bias-model``: the weak learner of masked debiasing and its bias-probability file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..progress import TqdmProgress
from .common import positive

EXAMPLES = """\
examples:
  bias-lab bias-model --task mnli --examples 2000 --epochs 5 --model bert-base-uncased --classifier my-mnli-model --out runs/bias-mnli
  bias-lab bias-model --task fever --data fever.train.jsonl --examples 500 --out runs/bias-fever
  bias-lab bias-model --task train.jsonl --labels negative positive --model prajjwal1/bert-tiny --epochs 3 --out runs/bias-own
then:
  bias-lab masks train --objective masked-debias --model my-mnli-model --data runs/bias-mnli/bias_probs.jsonl --out runs/mask
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bias-model", help="train the weak 'bias model' of masked debiasing and write its probabilities (creates a run)",
        description="Train a classifier on a small random sample of a training set (the study: bert-base-uncased, "
                    "5 epochs, 2 000 MNLI or 500 FEVER / QQP examples; or bert-tiny, 3 epochs), then write its "
                    "softmax on every training example as RUN/bias_probs.jsonl — the file `masks train --objective "
                    "masked-debias --data` reads (text, text_pair, label, bias_prob, bias_probs). With --classifier "
                    "the labels follow that classifier's id2label order (give the classifier you will debias).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, metavar="mnli|fever|qqp|FILE",
                        help="mnli or qqp (GLUE train split: the Hub's nyu-mll/glue or --data DIR), fever (--data: "
                             "Schuster's fever.train.jsonl) or a JSONL file of {text, text_pair, label}")
    parser.add_argument("--data", metavar="PATH", help="mnli/qqp: a local GLUE folder (<task>/train.jsonl); fever: "
                                                        "the FEVER training file")
    parser.add_argument("--labels", nargs="+", metavar="NAME",
                        help="a JSONL --task: the label names in class-index order (default: from the file)")
    parser.add_argument("--model", default="bert-base-uncased",
                        help="the weak learner's base model (bert-base-uncased; prajjwal1/bert-tiny; a local folder)")
    parser.add_argument("--classifier", metavar="MODEL",
                        help="the classifier to debias: the file's labels follow its id2label order")
    parser.add_argument("--examples", type=int,
                        help="size of the random training sample (default: 2000 for mnli and files, 500 for fever/qqp)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42, help="draws the sample, the head and the batches")
    parser.add_argument("--limit", type=int, help="score only the first N training examples (the file has N lines)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own code to run")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (re-running into it resumes)")
    parser.set_defaults(handler=bias_model_command)


def bias_model_command(args) -> int:
    from ..finetune.bias_model import BiasModelSettings, load_training_set, train_bias_model

    positive(args, "examples", "limit")
    settings = BiasModelSettings(examples=args.examples, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                 max_length=args.max_length, seed=args.seed)
    settings.validate()
    found = load_training_set(args.task, args.data, labels=args.labels, limit=args.limit)
    with TqdmProgress("bias model") as bar:
        result = train_bias_model(args.model, args.task, args.out, settings, data=args.data, labels=args.labels,
                                  classifier=args.classifier, score_limit=args.limit, device=args.device,
                                  dtype=args.dtype, trust_remote_code=args.trust_remote_code, progress=bar,
                                  training_set=found)
    summary = result.meta["summary"]
    print(f"bias model trained on {summary['trained_on']} examples; scored {summary['scored']}: accuracy "
          f"{summary['accuracy']:.3f}, mean p(gold) {summary['mean_bias_prob']:.3f}; labels {summary['labels']}")
    print(f"→ {result.probabilities_path} (for `bias-lab masks train --objective masked-debias --data`)")
    return 0
