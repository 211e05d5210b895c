"""Typed run results: one class per kind of run, each knowing its ``KIND`` (the run store's kind),
its artifact files, and how to ``save(folder)`` and ``load(folder)`` them. Pages and the CLI read
run folders only through these classes, so no artifact file name is spelled outside the library.

Every artifact is safetensors, parquet, CSV or JSON: run folders travel between machines, and
nothing read from one is unpickled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from .errors import BiasLabError
from .store import RunRecord, RunStore, write_json_atomic, write_parquet_atomic


class StoredResult:
    KIND: ClassVar[str]
    WHAT: ClassVar[str]              # e.g. "IG2 run", for messages
    FILES: ClassVar[tuple[str, ...]]  # the artifacts a finished run has
    HINT: ClassVar[str] = ""         # how to make one, for messages

    @classmethod
    def missing_file(cls, folder: str | Path) -> str | None:
        return next((name for name in cls.FILES if not (Path(folder) / name).is_file()), None)

    @classmethod
    def is_finished(cls, folder: str | Path) -> bool:
        return cls.missing_file(folder) is None

    @classmethod
    def require(cls, folder: str | Path) -> Path:
        missing = cls.missing_file(folder)
        if missing is not None:
            raise BiasLabError(f"{str(folder)!r} is not a finished {cls.WHAT} folder (missing {missing})"
                               + (f": {cls.HINT.format(folder=folder)}" if cls.HINT else ""))
        return Path(folder)

    @classmethod
    def finished_runs(cls, store: RunStore | None = None) -> list[RunRecord]:
        """The complete runs of this kind whose folders hold every artifact, newest first."""
        store = store or RunStore()
        return [record for record in store.list(kind=cls.KIND, status="complete") if cls.is_finished(record.artifact_dir)]


@dataclass
class TableResult(StoredResult):
    """A run whose artifacts are one table (``FILES[0]``, parquet) and ``run.json`` (``FILES[1]``:
    id, kind, config, summary, provenance)."""

    folder: Path
    table: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_parquet_atomic(folder / self.FILES[0], self.table)
        write_json_atomic(folder / self.FILES[1], self.meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path):
        folder = cls.require(folder)
        return cls(folder, pd.read_parquet(folder / cls.FILES[0]), json.loads((folder / cls.FILES[1]).read_text()))


def result_classes() -> dict[str, type[StoredResult]]:
    """Every kind of run and its result class."""
    from .evaluation.record import EvaluationResult
    from .heads.runs import HeadImportanceResult, HeadScoresResult
    from .neurons.run import BiasNeuronSelection, IG2Result
    from .compression.compare import ComparisonResult
    from .compression.distill import DistillResult
    from .pruning.train import DebiasResult, MaskTrainingResult
    from .sweeps.record import SweepResult
    from .finetune.bias_model import BiasModelResult
    from .finetune.challenge_run import ChallengeResult
    from .finetune.glue_run import GlueResult

    classes = (IG2Result, BiasNeuronSelection, HeadScoresResult, HeadImportanceResult, MaskTrainingResult,
               DebiasResult, EvaluationResult, DistillResult, ComparisonResult, SweepResult,
               GlueResult, BiasModelResult, ChallengeResult)
    return {cls.KIND: cls for cls in classes}


def __getattr__(name: str):
    """``from bias_lab.results import EvaluationResult`` (any class of :func:`result_classes`): each
    class lives beside its method, which imports this module, so they are looked up on first use."""
    if not name.startswith("_"):  # the import system asks for __path__ and the like: never import then
        for cls in result_classes().values():
            if cls.__name__ == name:
                return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
