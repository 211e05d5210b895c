"""A resumable IG2 run: prompts in, ``attributions.safetensors`` + ``prompts.parquet`` + ``run.json`` out.

Prompts are split, in input order, into units; each finished unit is stored at once, so an
interrupted run re-started into the same folder computes only the missing units.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

import pandas as pd
import torch

from .ig2 import IG2Settings, attribute_ig2
from ..errors import BiasLabError
from ..progress import CancelToken, report
from .prompts import Prompt, prepare_prompts
from ..provenance import provenance
from ..results import StoredResult
from ..store import RunStore, write_json_atomic, write_parquet_atomic, write_safetensors_atomic

if TYPE_CHECKING:
    from ..models import LoadedModel

PROMPT_COLUMNS = ("id", "prompt", "d1", "d2", "dimension", "modifier_type", "modifier", "template")


def _fingerprint(prompts: list[Prompt]) -> str:
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(json.dumps(prompt.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclass
class IG2Result(StoredResult):
    """A finished IG2 run: the prompts (with their probabilities, gaps and completeness deltas),
    the attribution scores [prompts, layers, neurons] and ``run.json`` (config, settings, summary)."""

    KIND: ClassVar[str] = "ig2"
    WHAT: ClassVar[str] = "IG2 run"
    FILES: ClassVar[tuple[str, ...]] = ("attributions.safetensors", "prompts.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab neurons attribute --out {folder}` first"

    folder: Path
    prompts: pd.DataFrame
    scores: torch.Tensor
    config: dict

    @property
    def num_layers(self) -> int:
        return int(self.scores.shape[1])

    @property
    def model(self) -> str | None:
        return self.config.get("config", {}).get("model")

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_safetensors_atomic(folder / self.FILES[0], {"ig2": self.scores.float()},
                                 {"layers": self.scores.shape[1], "neurons": self.scores.shape[2]})
        write_parquet_atomic(folder / self.FILES[1], self.prompts)
        write_json_atomic(folder / self.FILES[2], self.config)  # last: marks the folder finished
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "IG2Result":
        folder = cls.require(folder)
        from safetensors.torch import load_file

        return cls(folder, pd.read_parquet(folder / cls.FILES[1]), load_file(str(folder / cls.FILES[0]))["ig2"],
                   json.loads((folder / cls.FILES[2]).read_text()))

    @classmethod
    def layer_count(cls, folder: str | Path) -> int | None:
        """The layer count from the attributions' header (the scores stay on disk); None if the
        folder holds no readable attributions."""
        from safetensors import safe_open

        try:
            with safe_open(str(Path(folder) / cls.FILES[0]), "pt") as attributions:
                return int(attributions.get_slice("ig2").get_shape()[1])
        except Exception:
            return None

    def prompt_list(self) -> list[Prompt]:
        """The attributed prompts as :class:`Prompt` objects (to re-prepare them for a model)."""
        return [Prompt(**{c: (row[c] if c != "template" else int(row[c])) for c in PROMPT_COLUMNS})
                for row in self.prompts[list(PROMPT_COLUMNS)].to_dict("records")]


def attribute_unit(loaded: LoadedModel, chunk: list, settings: IG2Settings, *, cancel: CancelToken | None = None
                   ) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """One unit of an IG2 run (``neurons attribute`` and a neurons sweep alike): its rows — the prompt
    columns, P(d1), P(d2), gap, per-prompt seconds, each layer's convergence delta — and its
    attributions ``{"ig2": [prompts, layers, ffn]}``."""
    started = time.perf_counter()
    results = attribute_ig2(loaded, chunk, settings, cancel=cancel)
    seconds = time.perf_counter() - started
    rows = []
    for result, item in zip(results, chunk):
        row = {column: getattr(item.prompt, column) for column in PROMPT_COLUMNS}
        row.update(p_d1=result.p_d1, p_d2=result.p_d2, gap=result.gap, unit_seconds=seconds / len(chunk))
        row.update({f"delta_l{layer}": float(delta) for layer, delta in enumerate(result.deltas)})
        rows.append(row)
    return pd.DataFrame(rows), {"ig2": torch.stack([r.scores for r in results]).contiguous()}


def load_ig2_run(folder: str | Path) -> IG2Result:
    return IG2Result.load(folder)


def run_ig2(loaded: LoadedModel, prompts: list[Prompt], out_dir: str | Path, settings: IG2Settings | None = None, *,
            unit_size: int = 34, store: RunStore | None = None, progress: Callable | None = None,
            cancel: CancelToken | None = None, description: dict | None = None) -> IG2Result:
    """Attribute every prompt and write the run folder; resumes a previous run into the same folder."""
    settings = settings or IG2Settings()
    settings.validate()
    preparation = prepare_prompts(loaded, prompts)
    if not preparation.prompts:
        raise BiasLabError(f"no prompt left to attribute: {preparation.describe_skipped() or 'no prompts given'}")
    prepared = preparation.prompts
    store = store or RunStore()
    config = {
        "model": loaded.source, "steps": settings.steps, "method": settings.method, "target": settings.target,
        "prompts": len(prepared), "prompt_fingerprint": _fingerprint([p.prompt for p in prepared]),
        "unit_size": unit_size, **(description or {}),
    }
    run = store.start("ig2", config, model=loaded.source, artifact_dir=out_dir,
                      provenance=provenance(str(loaded.device)))
    units = [(f"{start:07d}", prepared[start:start + unit_size]) for start in range(0, len(prepared), unit_size)]
    with run:
        done = sum(len(chunk) for name, chunk in units if run.is_done(name))
        report(progress, done, len(prepared), "resuming" if done else "")
        for name, chunk in units:
            if run.is_done(name):
                continue
            run.save_unit(name, *attribute_unit(loaded, chunk, settings, cancel=cancel))
            done += len(chunk)
            report(progress, done, len(prepared))
        frame = run.rows(order=[name for name, _ in units])
        scores = torch.cat([run.load_unit_tensors(name)["ig2"] for name, _ in units])
        attribution_seconds = float(frame["unit_seconds"].sum())
        frame = frame.drop(columns=["unit_seconds"])
        record = store.get(run.id)
        summary = {
            "prompts": len(prepared), "skipped_prompts": len(prompts) - len(prepared),
            "mean_gap": float(frame["gap"].mean()), "attribution_s": round(attribution_seconds, 3),
            "prompts_per_s": round(len(prepared) / attribution_seconds, 4) if attribution_seconds else None,
            "max_abs_delta": float(frame.filter(like="delta_l").abs().max().max()),
        }
        IG2Result(run.dir, frame, scores.float(), {
            "id": run.id, "kind": "ig2", "config": record.config,
            "settings": {**settings.to_dict(), "batch_size": settings.batch_size},
            "skipped": {"words": preparation.skipped, "reasons": preparation.reasons},
            "provenance": record.provenance, "timing": {"attribution_s": round(attribution_seconds, 3)},
            "summary": summary,
        }).save(run.dir)
        run.complete(summary)
    return IG2Result.load(run.dir)


@dataclass
class BiasNeuronSelection(StoredResult):
    """Bias neurons selected from an IG2 run (or Union_IG from two plain-IG runs), stored in that
    run's folder: the table (jut, layer, neuron, …), the analyses of where they sit, and — once
    verified — the gap change under suppression/amplification against random neurons."""

    KIND: ClassVar[str] = "bias-neurons"
    WHAT: ClassVar[str] = "bias-neuron selection"
    FILES: ClassVar[tuple[str, ...]] = ("bias_neurons.csv",)
    HINT: ClassVar[str] = "run `bias-lab neurons select --run {folder}` first"
    UNION_TABLE: ClassVar[str] = "union_ig_neurons.csv"
    VERIFICATION: ClassVar[str] = "verification.csv"

    table: pd.DataFrame
    analyses: dict
    union: bool = False
    verification: pd.DataFrame | None = None

    @classmethod
    def table_file(cls, folder: str | Path, union: bool = False) -> Path:
        return Path(folder) / (cls.UNION_TABLE if union else cls.FILES[0])

    @staticmethod
    def analyses_file(table: Path) -> Path:
        return table.with_name(table.stem + "_analyses.json")

    def save(self, folder: str | Path, table: str | Path | None = None) -> Path:
        """Write into ``folder`` (or the table to ``table``, a .csv or .parquet file, its analyses beside it)."""
        from ..tables import write_table

        path = Path(table) if table is not None else self.table_file(folder, self.union)
        write_table(self.table, path)
        write_json_atomic(self.analyses_file(path), self.analyses)
        if self.verification is not None:
            write_table(self.verification, Path(folder) / self.VERIFICATION)
        return path

    @classmethod
    def load(cls, folder: str | Path, union: bool = False) -> "BiasNeuronSelection":
        from ..tables import read_table

        path = cls.table_file(folder, union)
        if not path.is_file():
            raise BiasLabError(f"{str(folder)!r} has no {path.name}: " + cls.HINT.format(folder=folder))
        analyses_path = cls.analyses_file(path)
        verification_path = Path(folder) / cls.VERIFICATION
        return cls(read_table(path), json.loads(analyses_path.read_text()) if analyses_path.is_file() else {}, union,
                   read_table(verification_path) if verification_path.is_file() else None)


def select_in_run(result: IG2Result, settings=None, *, union_with: IG2Result | None = None) -> BiasNeuronSelection:
    """Bias neurons of an IG2 run with their analyses (per layer, per dimension, intersections);
    with ``union_with`` (a plain-IG d2 run of the same prompts, ``result`` the d1 run) Union_IG."""
    from .analyses import intersection_statistics, neurons_per_dimension, neurons_per_layer
    from .selection import SelectionSettings, select_bias_neurons, union_ig

    settings = settings or SelectionSettings()
    if union_with is not None:
        targets = (result.config.get("config", {}).get("target"), union_with.config.get("config", {}).get("target"))
        if targets != ("d1", "d2"):
            raise BiasLabError(f"Union_IG joins plain-IG runs: the first must be a target d1 run and the second a "
                               f"target d2 run of the same prompts, but they have targets {targets[0]} and {targets[1]}")
        if union_with.prompts["id"].tolist() != result.prompts["id"].tolist():
            raise BiasLabError(f"{str(union_with.folder)!r} attributes other prompts than {str(result.folder)!r}: "
                               "Union_IG needs the same prompts")
        table = union_ig(result.scores, union_with.scores, result.prompts, settings)
    else:
        table = select_bias_neurons(result.scores, result.prompts, settings)
    analyses = {
        "settings": settings.to_dict(),
        "per_layer": neurons_per_layer(table, result.num_layers).to_dict("records"),
        "per_dimension": neurons_per_dimension(table, result.prompts).to_dict("records"),
        "intersections": intersection_statistics(result.scores, result.prompts, settings).to_dict("records"),
    }
    return BiasNeuronSelection(table, analyses, union=union_with is not None)
