"""Small models and data files shared by the GLUE, bias-model and challenge-set tests: a tiny BERT
with the built-in word list (fast to fine-tune), tiny classifiers with named labels, random masks,
and GLUE / challenge files in the Hub datasets' columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bias_lab.tiny import build_tiny_model


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def glue_folder(root: Path, *, train: int = 24, dev: int = 10) -> Path:
    """A local GLUE folder: sst2 (one sentence), stsb (a regression pair task), mnli (two dev sets,
    labels given by name on some lines)."""
    words = ["good", "bad"]
    for split, count in (("train", train), ("validation", dev)):
        write_jsonl(root / "sst2" / f"{split}.jsonl",
                    [{"sentence": f"the food is {words[i % 2]} .", "label": 1 - i % 2, "idx": i} for i in range(count)])
        write_jsonl(root / "stsb" / f"{split}.jsonl",
                    [{"sentence1": "a man works .", "sentence2": f"a {'man' if i % 2 else 'woman'} works here .",
                      "label": 4.0 * (i % 2) + 0.5 * (i % 3), "idx": i} for i in range(count)])
    hypotheses = ["the man works .", "the man lives here .", "the man never works ."]
    names = ["entailment", "neutral", "contradiction"]
    for split, count in (("train", train), ("validation_matched", dev), ("validation_mismatched", dev)):
        write_jsonl(root / "mnli" / f"{split}.jsonl",
                    [{"premise": "the man works .", "hypothesis": hypotheses[i % 3],
                      "label": names[i % 3] if i % 4 == 0 else i % 3, "idx": i} for i in range(count)])
    return root


@pytest.fixture(scope="session")
def small_bert(tmp_path_factory) -> Path:
    """A tiny random BERT masked LM with the built-in word list (a fast tokenizer and embedding)."""
    return build_tiny_model("bert", tmp_path_factory.mktemp("small-bert"))


@pytest.fixture(scope="session")
def nli_classifier(tmp_path_factory) -> Path:
    """A tiny NLI classifier whose head names its labels in an order of its own."""
    return build_tiny_model("bert", tmp_path_factory.mktemp("nli-classifier"), kind="classifier",
                            labels=["contradiction", "entailment", "neutral"])


def random_mask(loaded, *, keep: float = 0.6, seed: int = 0, block: str = "unstructured"):
    """A random mask of every prunable matrix of ``loaded`` (unstructured: one entry per weight)."""
    from bias_lab.pruning.layout import block_shape, pruned_sites
    from bias_lab.pruning.masks import MaskSet

    generator = torch.Generator().manual_seed(seed)
    masks = {site.key: torch.rand(block_shape(site.shape, block, site, loaded.num_heads), generator=generator) < keep
             for site in pruned_sites(loaded, block)}
    return MaskSet(block, masks, {"model": loaded.source, "head_roles": ["value"], "objective": "random"})


def stored_glue_run(model: str, masks: dict, *, tasks=("sst2", "rte"), config: dict | None = None) -> str:
    """A finished GLUE run in the store without fine-tuning anything (for the pages and the
    trade-off logic): ``masks`` maps a mask file (None = the unmasked model) to its task scores."""
    import pandas as pd

    from bias_lab.finetune.glue_run import GlueResult
    from bias_lab.finetune.names import mask_names, resolved
    from bias_lab.store import RunStore

    paths = list(masks)
    names = mask_names(paths)
    rows = [{"name": name, "mask": resolved(path), "task": task, "score": score, "accuracy": score,
             "density": 100.0 if path is None else 70.0, "train_examples": 10, "eval_examples": 5, "steps": 3,
             "training_s": 0.1}
            for name, path in zip(names, paths) for task, score in zip(tasks, masks[path])]
    settings = {"epochs": 3, "lr": 2e-05, "batch_size": 32, "seed": 42, "train_scores": False}
    run = RunStore().start("glue", {"model": model, "masks": [resolved(p) for p in paths if p is not None],
                                    "names": names, "tasks": list(tasks), "wnli": False, "data": None,
                                    "train_limit": None, "eval_limit": None, **settings, **(config or {})},
                           model=model)
    with run:
        result = GlueResult(run.dir, pd.DataFrame(rows), {"config": run.record.config})
        averages = result.averages()
        summary = {"tasks": " ".join(tasks), "masks": len(paths) - 1, "wnli": False,
                   "average": float(averages["average"].iloc[0]), "averages": averages.to_dict("records")}
        result.meta["summary"] = summary
        result.save(run.dir)
        run.complete(summary)
    return run.id
