"""Learning a pruning mask with frozen weights: scores only, resumable, cancellable."""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

import pandas as pd
import torch

from ..errors import BiasLabError
from ..forward import frozen_parameters
from ..models import RUN_MODEL_FOLDER
from ..progress import CancelToken, report
from ..provenance import provenance
from ..results import StoredResult, TableResult
from ..store import RunStore, write_json_atomic, write_parquet_atomic
from .checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from .layout import parse_block
from .masks import MaskSet, Scores, densities, overall_density, surviving_heads, threshold_schedule

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class PruneSettings:
    block: int | str = 32
    epochs: int = 1
    lr: float = 0.01
    threshold: float = 0.1
    l1: float = 0.0
    batch_size: int = 16
    seed: int = 0
    checkpoint_every: int = 50
    head_roles: tuple[str, ...] = ("value",)

    def validate(self) -> None:
        parse_block(self.block)
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise BiasLabError(f"{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if not 0 <= self.threshold < 1:
            raise BiasLabError(f"threshold {self.threshold} must be in [0, 1)")
        if self.lr <= 0:
            raise BiasLabError(f"learning rate {self.lr} must be positive")


@dataclass
class MaskTrainingResult(StoredResult):
    """A trained pruning mask with its densities per layer and module, the surviving heads, the
    training history and ``run.json`` (config, summary, timing, provenance)."""

    KIND: ClassVar[str] = "prune"
    WHAT: ClassVar[str] = "mask-training run"
    FILES: ClassVar[tuple[str, ...]] = ("mask.safetensors", "densities.parquet", "history.parquet", "heads.parquet",
                                        "run.json")
    HINT: ClassVar[str] = "train a mask with `bias-lab masks train --out {folder}` first"

    folder: Path
    masks: MaskSet
    history: pd.DataFrame
    densities: pd.DataFrame
    heads: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def mask_path(self) -> Path:
        return self.folder / self.FILES[0]

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @classmethod
    def mask_file(cls, folder: str | Path) -> Path:
        return Path(folder) / cls.FILES[0]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.masks.save(folder / self.FILES[0])
        for name, frame in zip(self.FILES[1:4], (self.densities, self.history, self.heads)):
            write_parquet_atomic(folder / name, frame)
        write_json_atomic(folder / self.FILES[4], self.meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "MaskTrainingResult":
        folder = cls.require(folder)
        densities, history, heads = (pd.read_parquet(folder / name) for name in cls.FILES[1:4])
        return cls(folder, MaskSet.load(folder / cls.FILES[0]), history, densities, heads,
                   json.loads((folder / cls.FILES[4]).read_text()))



@dataclass
class DebiasResult(TableResult):
    """A classifier fine-tuned on a debiasing objective (masked debiasing): the model folder, the
    training history (the table) and ``run.json``."""

    KIND: ClassVar[str] = "debias"
    WHAT: ClassVar[str] = "debiasing run"
    FILES: ClassVar[tuple[str, ...]] = ("history.parquet", "run.json")
    MODEL: ClassVar[str] = RUN_MODEL_FOLDER

    @property
    def history(self) -> pd.DataFrame:
        return self.table

    @property
    def model_path(self) -> Path:
        return self.folder / self.MODEL


def train_mask(loaded: LoadedModel, objective, out_dir: str | Path, settings: PruneSettings | None = None, *,
               description: dict | None = None, store: RunStore | None = None, progress: Callable | None = None,
               cancel: CancelToken | None = None) -> MaskTrainingResult:
    """Train block scores against ``objective`` (weights frozen) and write the run folder:
    ``mask.safetensors``, ``densities.parquet``, ``history.parquet``, ``run.json``. A checkpoint
    every ``checkpoint_every`` steps lets an interrupted run resume where it stopped."""
    settings = settings or PruneSettings()
    settings.validate()
    block = parse_block(settings.block)
    out = Path(out_dir)
    config = {"model": loaded.source, "objective": objective.name, **{k: v for k, v in asdict(settings).items()
                                                                      if k != "checkpoint_every"},
              **(description or {})}
    store = store or RunStore()
    run = store.start("prune", config, model=loaded.source, artifact_dir=out,
                      provenance=provenance(str(loaded.device), settings.seed))
    with run, loaded.lock, frozen_parameters(loaded.model):
        torch.manual_seed(settings.seed)
        scores = Scores(loaded, block, head_roles=settings.head_roles)
        optimizer = torch.optim.Adam(scores.parameters(), lr=settings.lr)
        epochs = [objective.batches(settings.batch_size, torch.Generator().manual_seed(settings.seed + e))
                  for e in range(settings.epochs)]
        total = sum(len(batches) for batches in epochs)
        step, history, means, seconds = 0, [], None, 0.0
        state = load_checkpoint(out, loaded.device)
        if state is not None:
            scores.load_state_dict(state["scores"])
            optimizer.load_state_dict(state["optimizer"])
            step, history, means, seconds = state["step"], state["history"], state["means"], state["seconds"]
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if loaded.device.type == "cuda" else nullcontext()
        started = time.perf_counter()
        report(progress, step, total, "resuming" if step else "")
        with scores.attached():
            position = 0
            for epoch, batches in enumerate(epochs):
                if position + len(batches) <= step:
                    position += len(batches)
                    continue
                if means is None or position == step:
                    scores.threshold = threshold_schedule(step, total, final=settings.threshold)
                    objective.start_epoch()
                    means = objective.means
                objective.means = means
                for batch in batches:
                    if position < step:
                        position += 1
                        continue
                    if cancel is not None:
                        cancel.check()
                    scores.threshold = threshold_schedule(step, total, final=settings.threshold)
                    with autocast:
                        parts = objective.loss(batch, scores.suspend)
                    loss = parts["loss"]
                    if settings.l1:
                        sparsity = torch.cat([torch.sigmoid(p).reshape(-1) for p in scores.parameters()]).mean()
                        loss = loss + settings.l1 * sparsity
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    step += 1
                    position += 1
                    history.append({"step": step, "epoch": epoch, "loss": float(loss.detach()),
                                    "debias": float(parts["debias"]), "regulariser": float(parts["regulariser"]),
                                    "threshold": scores.threshold})
                    report(progress, step, total, f"loss {float(loss.detach()):.4f}")
                    if step % settings.checkpoint_every == 0 and step < total:
                        save_checkpoint(out, step=step, scores=scores.state_dict(),
                                        optimizer=optimizer.state_dict(), history=history, means=means,
                                        seconds=seconds + time.perf_counter() - started)
                means = None
        seconds += time.perf_counter() - started
        scores.threshold = settings.threshold
        masks = scores.to_masks({"model": loaded.source, "objective": objective.name, "step": step,
                                 "mode": (description or {}).get("mode")})
        table = densities(loaded, masks)
        heads = surviving_heads(loaded, masks)
        frame = pd.DataFrame(history)
        summary = {"steps": step, "final_loss": float(frame["loss"].iloc[-1]) if len(frame) else None,
                   "density": overall_density(table),
                   "pruned_heads": int((~heads["alive"]).sum()), "training_s": round(seconds, 3)}
        result = MaskTrainingResult(out, masks, frame, table, heads, {
            "id": run.id, "kind": "prune", "config": run.record.config, "summary": summary,
            "timing": {"training_s": round(seconds, 3)}, "provenance": run.record.provenance})
        result.save(out)
        remove_checkpoint(out)
        run.complete(summary)
    return result


def train_weights(loaded: LoadedModel, objective, out_dir: str | Path, settings: PruneSettings | None = None, *,
                  description: dict | None = None, store: RunStore | None = None, progress: Callable | None = None,
                  cancel: CancelToken | None = None) -> pd.DataFrame:
    """The debias-only comparison: the same objective, but the weights are trained (no mask). The
    regulariser compares with a frozen copy of the original model. Writes ``model/`` (the debiased
    checkpoint), ``history.parquet`` and ``run.json``; returns the history."""
    import copy
    from contextlib import contextmanager

    from ..families import adapter_for

    settings = settings or PruneSettings(lr=5e-5)
    settings.validate()
    out = Path(out_dir)
    config = {"model": loaded.source, "objective": objective.name, "debias_only": True,
              **{k: v for k, v in asdict(settings).items() if k in ("epochs", "lr", "batch_size", "seed")},
              **(description or {})}
    store = store or RunStore()
    run = store.start("debias", config, model=loaded.source, artifact_dir=out,
                      provenance=provenance(str(loaded.device), settings.seed))
    reference = copy.copy(loaded)
    reference.model = copy.deepcopy(loaded.model).eval()
    reference.adapter = adapter_for(reference.model)
    for parameter in reference.model.parameters():
        parameter.requires_grad_(False)

    @contextmanager
    def original():
        trained = objective.loaded
        objective.loaded = reference
        try:
            yield
        finally:
            objective.loaded = trained

    with run, loaded.lock:
        torch.manual_seed(settings.seed)
        trainable = [p for p in loaded.model.parameters()]
        for parameter in trainable:
            parameter.requires_grad_(True)
        optimizer = torch.optim.AdamW(trainable, lr=settings.lr)
        history, step, started = [], 0, time.perf_counter()
        total = sum(len(objective.batches(settings.batch_size, torch.Generator().manual_seed(settings.seed + e)))
                    for e in range(settings.epochs))
        try:
            for epoch in range(settings.epochs):
                objective.start_epoch()
                for batch in objective.batches(settings.batch_size, torch.Generator().manual_seed(settings.seed + epoch)):
                    if cancel is not None:
                        cancel.check()
                    parts = objective.loss(batch, original)
                    optimizer.zero_grad()
                    parts["loss"].backward()
                    optimizer.step()
                    step += 1
                    history.append({"step": step, "epoch": epoch, "loss": float(parts["loss"].detach()),
                                    "debias": float(parts["debias"]), "regulariser": float(parts["regulariser"])})
                    report(progress, step, total)
        finally:
            for parameter in trainable:
                parameter.requires_grad_(False)
            loaded.model.eval()
        from ..models import quiet_transformers

        with quiet_transformers():
            loaded.model.save_pretrained(out / DebiasResult.MODEL)
            loaded.tokenizer.save_pretrained(out / DebiasResult.MODEL)
        frame = pd.DataFrame(history)
        seconds = round(time.perf_counter() - started, 3)
        DebiasResult(out, frame, {"id": run.id, "kind": "debias", "config": run.record.config,
                                  "timing": {"training_s": seconds}}).save(out)
        run.complete({"steps": step, "final_loss": history[-1]["loss"] if history else None, "training_s": seconds})
    return frame
