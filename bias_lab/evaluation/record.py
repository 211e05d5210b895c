"""Evaluations as stored runs: what the Trade-off page plots (performance vs bias, by method)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..interventions import InterventionSpec
from ..metrics import headline
from ..provenance import provenance
from ..results import StoredResult
from ..store import RunStore, write_json_atomic, write_parquet_atomic
from .results import EvalResult

def method_of(spec: InterventionSpec | None) -> str:
    """original, BNS (neurons), head pruning, mask — or a combination."""
    if spec is None or spec.is_empty:
        return "original"
    parts = [name for name, present in (("BNS", spec.neurons), ("head pruning", spec.heads), ("mask", spec.mask))
             if present]
    return " + ".join(parts)


def data_label(data: str | None, limit: int | None, items: int | None) -> str:
    """What a point was computed on, e.g. 'dev.json, first 200' — points with different labels are
    not comparable."""
    name = str(data) if data else "default data"
    return f"{name}, first {limit}" if limit else f"{name}, all {items}" if items is not None else name


def evaluation_config(result: EvalResult, spec: InterventionSpec | None, *, data: str | None,
                      limit: int | None) -> dict:
    """A stored evaluation's config — the same keys from the app and the CLI, so the Trade-off page
    reads both alike. The intervention is stored as applied (a re-targeted spec as such)."""
    applied = result.config.get("intervention")
    if applied is not None:
        spec = InterventionSpec.from_dict(applied)
    items = result.config.get("items")
    return {"benchmark": result.benchmark, "data": data, "limit": limit, "items": items,
            "data_label": data_label(data, limit, items), "notes": result.config.get("notes", []),
            "intervention": spec.to_dict() if spec else None, "method": method_of(spec)}


@dataclass
class EvaluationResult(StoredResult):
    """A stored evaluation: the benchmark's summary, its per-item table and ``run.json`` (the
    benchmark and the run config: data, limit, intervention, method)."""

    KIND: ClassVar[str] = "evaluate"
    WHAT: ClassVar[str] = "evaluation run"
    FILES: ClassVar[tuple[str, ...]] = ("summary.json", "items.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab evaluate BENCHMARK --out {folder}` first"

    folder: Path
    benchmark: str
    summary: dict
    items: pd.DataFrame
    config: dict

    @property
    def headline(self) -> dict:
        return headline(self.benchmark, self.summary)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_json_atomic(folder / self.FILES[0], self.summary)
        write_parquet_atomic(folder / self.FILES[1], self.items)
        write_json_atomic(folder / self.FILES[2], {"benchmark": self.benchmark, "config": self.config})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "EvaluationResult":
        folder = cls.require(folder)
        meta = json.loads((folder / cls.FILES[2]).read_text())
        return cls(folder, meta["benchmark"], json.loads((folder / cls.FILES[0]).read_text()),
                   pd.read_parquet(folder / cls.FILES[1]), meta["config"])


def run_evaluation(result: EvalResult, loaded, spec: InterventionSpec | None, *, data: str | None = None,
                   limit: int | None = None, extra: dict | None = None, seed: int | None = None,
                   out: str | Path | None = None, store: RunStore | None = None) -> EvaluationResult:
    """Store an evaluation as a complete run (summary, items, config) and return it; the data, the
    item limit and the number of items scored are part of its config (``extra`` adds keys, such as
    the CLI's options). ``out`` is the run folder (default: one in the run store's home)."""
    store = store or RunStore()
    config = {**evaluation_config(result, spec, data=data, limit=limit), **(extra or {})}
    run = store.start("evaluate", config, model=loaded.source, artifact_dir=out,
                      provenance=provenance(str(loaded.device), seed))
    with run:
        stored = EvaluationResult(run.dir, result.benchmark, result.summary, result.items, run.record.config)
        stored.save(run.dir)
        run.complete({"method": config["method"], "items": config["items"], **stored.headline})
    return stored
