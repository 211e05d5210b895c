"""Head-method runs as typed results: per-head ablation scores and gradient importance (with the
iterative-pruning curve), each written into the run store by the library."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import pandas as pd

from ..models import LoadedModel
from ..progress import CancelToken
from ..provenance import provenance
from ..results import StoredResult, TableResult
from ..store import RunStore, write_json_atomic, write_parquet_atomic
from .metrics import HeadMetric

PERF_NEEDED = "re-score the heads of an LM with a performance metric (--perf mlm-loss, perplexity or stereoset-lms)"


@dataclass
class HeadScoresResult(TableResult):
    """Every head's performance and bias with the head ablated, and the unablated baseline (``meta``:
    id, kind, config, baseline, timing, model (layers, heads), provenance)."""

    KIND: ClassVar[str] = "heads"
    WHAT: ClassVar[str] = "heads run"
    FILES: ClassVar[tuple[str, ...]] = ("head_scores.parquet", "run.json")
    HINT: ClassVar[str] = "score the heads with `bias-lab heads score --out {folder}` first"

    @property
    def baseline(self) -> dict:
        return self.meta.get("baseline", {})

    @property
    def has_perf(self) -> bool:
        return not self.table["perf"].isna().all()

    @property
    def has_bias(self) -> bool:
        return not self.table["bias"].isna().all()


def run_head_scoring(loaded: LoadedModel, perf: HeadMetric | None, bias: HeadMetric | None, out: str | Path, *,
                     description: dict | None = None, seed: int = 0, use_prefix_cache: bool = True,
                     ablations_per_pass: int | None = None, store: RunStore | None = None,
                     progress: Callable | None = None, cancel: CancelToken | None = None) -> HeadScoresResult:
    """Score every head (see :func:`score_heads`) as a resumable run in ``out``."""
    from .ablation import score_heads

    store = store or RunStore()
    run = store.start("heads", description or {}, model=loaded.source, artifact_dir=out,
                      provenance=provenance(str(loaded.device), seed))
    with run:
        scores = score_heads(loaded, perf, bias, use_prefix_cache=use_prefix_cache,
                             ablations_per_pass=ablations_per_pass, run=run, progress=progress, cancel=cancel)
        result = HeadScoresResult(run.dir, scores.table, {
            "id": run.id, "kind": "heads", "config": run.record.config, "baseline": scores.baseline,
            "timing": {"scoring_s": round(scores.seconds, 3)},
            "model": {"layers": loaded.num_layers, "heads": loaded.num_heads}, "provenance": run.record.provenance})
        result.save(run.dir)
        run.complete({"heads": len(scores.table), "baseline_perf": scores.baseline["perf"],
                      "baseline_bias": scores.baseline["bias"], "scoring_s": round(scores.seconds, 3)})
    return result


@dataclass
class HeadImportanceResult(StoredResult):
    """Michel et al. gradient importance of every head and, when asked for, the iterative-pruning
    curve (performance and bias after each step)."""

    KIND: ClassVar[str] = "head-importance"
    WHAT: ClassVar[str] = "head-importance run"
    FILES: ClassVar[tuple[str, ...]] = ("importance.parquet", "run.json")
    CURVE: ClassVar[str] = "iterative.parquet"
    HINT: ClassVar[str] = "run `bias-lab heads importance --out {folder}` first"

    folder: Path
    importance: pd.DataFrame
    meta: dict
    curve: pd.DataFrame | None = None  # its ``heads`` column: the pruned heads of each step, as lists

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_parquet_atomic(folder / self.FILES[0], self.importance)
        if self.curve is not None:
            write_parquet_atomic(folder / self.CURVE, self.curve.assign(heads=self.curve["heads"].map(json.dumps)))
        write_json_atomic(folder / self.FILES[1], self.meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "HeadImportanceResult":
        folder = cls.require(folder)
        curve = None
        if (folder / cls.CURVE).is_file():
            curve = pd.read_parquet(folder / cls.CURVE)
            curve["heads"] = curve["heads"].map(json.loads)
        return cls(folder, pd.read_parquet(folder / cls.FILES[0]), json.loads((folder / cls.FILES[1]).read_text()),
                   curve)

    @classmethod
    def curve_runs(cls, store: RunStore | None = None) -> list:
        """The finished importance runs that have an iterative-pruning curve."""
        return [record for record in cls.finished_runs(store) if (record.artifact_dir / cls.CURVE).is_file()]


def run_head_importance(loaded: LoadedModel, texts: list[str], out: str | Path, *, perf: HeadMetric | None = None,
                        bias: HeadMetric | None = None, iterative: int = 0, fraction: float = 0.1,
                        scores: str = "gradient", batch_size: int | None = None, seed: int = 0,
                        description: dict | None = None, store: RunStore | None = None,
                        progress: Callable | None = None) -> HeadImportanceResult:
    """Gradient head importance on ``texts`` and, with ``iterative`` steps, iterative pruning."""
    from ..errors import BiasLabError
    from .importance import gradient_importance, iterative_pruning

    if iterative and perf is None:
        raise BiasLabError("iterative pruning records performance per step: give a performance metric")
    store = store or RunStore()
    run = store.start("head-importance", {**(description or {}), "seed": seed, "iterative": iterative,
                                          "fraction": fraction},
                      model=loaded.source, artifact_dir=out, provenance=provenance(str(loaded.device), seed))
    with run:
        table = gradient_importance(loaded, texts, batch_size=batch_size, seed=seed)
        curve = None
        summary = {"heads": len(table)}
        if iterative:
            curve = iterative_pruning(loaded, texts, perf, bias, fraction=fraction, steps=iterative,
                                      batch_size=batch_size, seed=seed, scores=scores, progress=progress)
            summary["steps"] = int(curve["step"].max())
        result = HeadImportanceResult(run.dir, table, {"id": run.id, "kind": "head-importance",
                                                       "config": run.record.config}, curve)
        result.save(run.dir)
        run.complete(summary)
    return result
