"""Challenge sets of masked debiasing (Meissner et al. 2022): data on which a classifier that leans on
a shortcut fails, and the accuracy of a classifier on them.

- ``mnli`` — MNLI dev, matched and mismatched (``nyu-mll/glue``).
- ``hans`` — HANS validation (``jhu-cogsci/hans``, 30 000 pairs; label 0 = entailment,
  1 = non-entailment): a prediction of neutral or contradiction counts as non-entailment.
- ``mnli-negation`` — MNLI dev matched pairs whose hypothesis contains a negation word (no, not,
  don't, none, nothing, never, aren't, isn't, weren't, neither, didn't, doesn't, cannot, hasn't,
  won't — typographic or plain apostrophe), gold entailment or contradiction only.
- ``paws`` — PAWS-QQP ``dev_and_test.tsv`` (built from QQP with the PAWS scripts; the Hub's ``paws``
  is the Wiki set, not this one): a local file only.
- ``fever-symmetric`` — FEVER-Symmetric v0.1 (``fever_symmetric_generated.jsonl``) or v0.2
  (dev / test), claim + evidence, SUPPORTS / REFUTES: a local file only.

Every set also reads a local file with the Hub dataset's columns (JSONL; MNLI: a folder of
``validation_matched.jsonl`` / ``validation_mismatched.jsonl``). A classifier's predictions are
read through its own label names (``config.id2label``), never an assumed order: each set says which
names it needs (:func:`prediction_classes`)."""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..data.common import DataError, load_hf_dataset, local_path, read_jsonl
from ..errors import BiasLabError
from .glue import glue_task, load_split, read_split_file
from .train import normalised_label

NEGATION_WORDS = frozenset(("no", "not", "don't", "none", "nothing", "never", "aren't", "isn't", "weren't", "neither",
                            "didn't", "doesn't", "cannot", "hasn't", "won't"))
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

ENTAILMENT, NON_ENTAILMENT = "entailment", "non-entailment"
HANS_DATASET = "jhu-cogsci/hans"
MNLI_SPLITS = {"matched": "validation_matched", "mismatched": "validation_mismatched"}

# The names a classifier's head may give a class, per canonical class (compared by normalised_label).
ALIASES = {
    "entailment": ("entailment", "entails", "entail"),
    "neutral": ("neutral",),
    "contradiction": ("contradiction", "contradicts", "contradict"),
    "duplicate": ("duplicate", "is duplicate", "paraphrase", "equivalent"),
    "not_duplicate": ("not duplicate", "not paraphrase", "non paraphrase", "not equivalent"),
    "SUPPORTS": ("supports", "support", "supported"),
    "REFUTES": ("refutes", "refute", "refuted"),
    "NOT ENOUGH INFO": ("not enough info", "nei", "not enough information"),
}


@dataclass(frozen=True)
class ChallengeSet:
    name: str
    title: str
    needs: tuple[str, ...]           # the classes a classifier's head must name
    splits: tuple[str, ...]          # the rows of the result: 'all' and per gold class, or MNLI's two dev sets
    local: str                       # what a local file is, for messages
    hub: bool = True                 # loadable from the Hub without a local file


SETS: dict[str, ChallengeSet] = {s.name: s for s in (
    ChallengeSet("mnli", "MNLI dev", ("entailment", "neutral", "contradiction"), ("matched", "mismatched"),
                 "a folder with validation_matched.jsonl / validation_mismatched.jsonl (premise, hypothesis, label)"),
    ChallengeSet("hans", "HANS", ("entailment",), ("all", ENTAILMENT, NON_ENTAILMENT),
                 "a JSONL file with premise, hypothesis, label (0 entailment, 1 non-entailment), heuristic"),
    ChallengeSet("mnli-negation", "MNLI negation subset", ("entailment", "contradiction"),
                 ("all", "entailment", "contradiction"),
                 "the MNLI folder (validation_matched.jsonl with premise, hypothesis, label)"),
    ChallengeSet("paws", "PAWS-QQP", ("duplicate", "not_duplicate"), ("all", "duplicate", "not_duplicate"),
                 "PAWS-QQP's dev_and_test.tsv (id, sentence1, sentence2, label)", hub=False),
    ChallengeSet("fever-symmetric", "FEVER-Symmetric", ("SUPPORTS", "REFUTES"), ("all", "SUPPORTS", "REFUTES"),
                 "a FEVER-Symmetric JSONL (v0.1 or v0.2: claim, evidence or evidence_sentence, label)", hub=False),
)}


def challenge_set(name: str) -> ChallengeSet:
    try:
        return SETS[name]
    except KeyError:
        raise BiasLabError(f"unknown challenge set {name!r}: use some of {', '.join(SETS)}") from None


@dataclass(frozen=True)
class ChallengeExample:
    text: str
    text_pair: str | None
    gold: str              # the gold class, canonical (entailment, non-entailment, duplicate, SUPPORTS …)
    split: str = ""        # for MNLI: matched / mismatched
    group: str = ""        # HANS: the heuristic


def has_negation(text: str) -> bool:
    """Whether a text contains one of the negation words (apostrophes typographic or plain)."""
    words = _WORD.findall(text.translate(_APOSTROPHES).lower())
    return any(word in NEGATION_WORDS for word in words)


def hans_class(name: str) -> str:
    """HANS's two classes: entailment stays, every other NLI class (neutral, contradiction) is non-entailment."""
    return ENTAILMENT if canonical(name) == "entailment" else NON_ENTAILMENT


def canonical(name: str) -> str | None:
    """The canonical class a label name stands for (:data:`ALIASES`), or None."""
    wanted = normalised_label(name)
    for canonical_name, aliases in ALIASES.items():
        if wanted in {normalised_label(alias) for alias in aliases}:
            return canonical_name
    return None


def prediction_classes(chosen: ChallengeSet, id2label: dict) -> list[str]:
    """The class each head output predicts in the set's terms; refuses a head that does not name the
    classes the set needs."""
    names = [str(id2label[i]) for i in sorted(id2label)]
    classes = [canonical(name) for name in names]
    missing = [need for need in chosen.needs if need not in classes]
    if missing:
        raise BiasLabError(f"the classifier's labels ({', '.join(names)}) do not name {', '.join(missing)}: "
                           f"{chosen.title} needs a classifier whose config names its labels (id2label) "
                           f"{' and '.join(chosen.needs)}")
    if chosen.name == "hans":
        return [hans_class(name) for name in names]
    return [cls if cls is not None else f"other:{name}" for cls, name in zip(classes, names)]


# --- loading -----------------------------------------------------------------------------------------

def _mnli_examples(source, split: str, limit: int | None) -> list[ChallengeExample]:
    task = glue_task("mnli")
    hub_split = MNLI_SPLITS[split]
    if source is None:
        found = load_split(task, hub_split, None, limit=limit)
    else:
        folder = Path(source).expanduser()
        for candidate in (folder / f"{hub_split}.jsonl", folder / "mnli" / f"{hub_split}.jsonl"):
            if candidate.is_file():
                break
        else:
            raise DataError(f"MNLI folder {str(source)!r} has no {hub_split}.jsonl (or mnli/{hub_split}.jsonl): give "
                            f"{SETS['mnli'].local}")
        found = read_split_file(task, candidate, limit=limit, what=f"MNLI {hub_split}")
    return [ChallengeExample(e.text, e.text_pair, task.labels[int(e.label)], split) for e in found]


def _hans_label(value, where: str) -> str:
    if isinstance(value, str):
        if normalised_label(value) in ("entailment", "non entailment", "not entailment"):
            return ENTAILMENT if normalised_label(value) == "entailment" else NON_ENTAILMENT
    elif value in (0, 1) and not isinstance(value, bool):
        return (ENTAILMENT, NON_ENTAILMENT)[value]
    raise DataError(f"{where}: HANS label {value!r} must be 0 (entailment), 1 (non-entailment) or one of those names")


def _hans_examples(source, limit: int | None) -> list[ChallengeExample]:
    if source is None:
        dataset = load_hf_dataset(HANS_DATASET, None, "validation", "HANS", SETS["hans"].local)
        records = ((f"{HANS_DATASET} row {i}", row) for i, row in enumerate(dataset))
    else:
        path = Path(source).expanduser()
        records = ((f"{path} line {n}", row) for n, row in read_jsonl(path, "HANS file", ("premise", "hypothesis", "label")))
    examples = []
    for where, row in records:
        examples.append(ChallengeExample(str(row["premise"]), str(row["hypothesis"]), _hans_label(row["label"], where),
                                         group=str(row.get("heuristic", ""))))
        if limit is not None and len(examples) >= limit:
            break
    return examples


def negation_subset(examples: Sequence[ChallengeExample]) -> list[ChallengeExample]:
    """MNLI pairs whose hypothesis has a negation word, gold entailment or contradiction only."""
    return [e for e in examples if e.gold in ("entailment", "contradiction") and has_negation(e.text_pair or "")]


def _paws_text(value: str) -> str:
    """PAWS-QQP's generation script writes Python byte literals (b'…'); read them as text."""
    value = value.strip()
    if len(value) >= 3 and value[0] == "b" and value[1] in "'\"" and value[-1] == value[1]:
        try:
            return ast.literal_eval(value).decode("utf-8")
        except (ValueError, SyntaxError, UnicodeDecodeError):
            return value[2:-1]
    return value


def _paws_examples(source, limit: int | None) -> list[ChallengeExample]:
    path = local_path(source)
    if path is None or not path.is_file():
        raise BiasLabError(f"the paws set needs a local file: --data paws=PATH, {SETS['paws'].local}"
                           + (f" ({str(source)!r} does not exist)" if source else ""))
    examples = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in ("sentence1", "sentence2", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path} has no {missing[0]!r} column: PAWS-QQP's TSV has id, sentence1, sentence2, label")
        for number, row in enumerate(reader, start=2):
            if row["label"] not in ("0", "1"):
                raise DataError(f"{path} line {number}: label {row['label']!r} must be 0 or 1")
            examples.append(ChallengeExample(_paws_text(row["sentence1"]), _paws_text(row["sentence2"]),
                                             "duplicate" if row["label"] == "1" else "not_duplicate"))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def _fever_examples(source, limit: int | None) -> list[ChallengeExample]:
    path = local_path(source)
    if path is None or not path.is_file():
        raise BiasLabError(f"the fever-symmetric set needs a local file: --data fever-symmetric=PATH, "
                           f"{SETS['fever-symmetric'].local}" + (f" ({str(source)!r} does not exist)" if source else ""))
    examples = []
    for number, row in read_jsonl(path, "FEVER-Symmetric file", ("claim",)):
        evidence = row.get("evidence", row.get("evidence_sentence"))
        label = row.get("label", row.get("gold_label"))
        if evidence is None or label is None:
            raise DataError(f"{path} line {number}: a FEVER-Symmetric record needs 'evidence' (v0.2) or "
                            "'evidence_sentence' (v0.1), and 'label'")
        gold = canonical(str(label))
        if gold not in ("SUPPORTS", "REFUTES"):
            raise DataError(f"{path} line {number}: label {label!r} must be SUPPORTS or REFUTES")
        examples.append(ChallengeExample(str(row["claim"]), str(evidence), gold))
        if limit is not None and len(examples) >= limit:
            break
    return examples


def load_challenge_set(name: str, source: str | Path | None = None, *, limit: int | None = None) -> list[ChallengeExample]:
    """The examples of a challenge set, from ``source`` (a local file or folder) or the Hub; ``limit``
    keeps the first N (of each MNLI dev set)."""
    chosen = challenge_set(name)
    if source is None and not chosen.hub:
        raise BiasLabError(f"the {name} set needs a local file: --data {name}=PATH, {chosen.local}")
    if name == "mnli":
        found = [e for split in MNLI_SPLITS for e in _mnli_examples(source, split, limit)]
    elif name == "mnli-negation":
        found = negation_subset(_mnli_examples(source, "matched", None))[:limit]
    elif name == "hans":
        found = _hans_examples(source, limit)
    elif name == "paws":
        found = _paws_examples(source, limit)
    else:
        found = _fever_examples(source, limit)
    if not found:
        raise DataError(f"the {name} set has no examples" + (f" in {source}" if source else ""))
    return found


# --- accuracy ----------------------------------------------------------------------------------------

def accuracy_rows(chosen: ChallengeSet | str, examples: Sequence[ChallengeExample], predicted: Sequence[str]) -> pd.DataFrame:
    """One row per split of the set (``split, accuracy, correct, count``): predictions (classes in the
    set's terms, :func:`prediction_classes`) against the gold classes — overall and per gold class,
    or per MNLI dev set. Accuracy is in [0, 1]."""
    chosen = challenge_set(chosen) if isinstance(chosen, str) else chosen
    gold = np.array([e.gold for e in examples], dtype=object)
    right = np.array([p == g for p, g in zip(predicted, gold)], dtype=bool)
    rows = []
    for split in chosen.splits:
        if split == "all":
            keep = np.ones(len(gold), dtype=bool)
        elif chosen.name == "mnli":
            keep = np.array([e.split == split for e in examples], dtype=bool)
        else:
            keep = gold == split
        count = int(keep.sum())
        rows.append({"split": split, "accuracy": float(right[keep].mean()) if count else float("nan"),
                     "correct": int(right[keep].sum()), "count": count})
    return pd.DataFrame(rows, columns=["split", "accuracy", "correct", "count"])
