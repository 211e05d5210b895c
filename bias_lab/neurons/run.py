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
from typing import Callable

import pandas as pd
import torch

from .ig2 import IG2Settings, attribute_ig2
from ..errors import BiasLabError
from ..progress import CancelToken, report
from .prompts import Prompt, prepare_prompts
from ..provenance import provenance
from ..store import RunStore, write_json_atomic, write_parquet_atomic, write_safetensors_atomic

PROMPT_COLUMNS = ("id", "prompt", "d1", "d2", "dimension", "modifier_type", "modifier", "template")


def _fingerprint(prompts: list[Prompt]) -> str:
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(json.dumps(prompt.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclass
class IG2Result:
    """A finished IG2 run read back from its folder."""

    folder: Path
    prompts: pd.DataFrame
    scores: torch.Tensor
    config: dict

    @property
    def num_layers(self) -> int:
        return int(self.scores.shape[1])


def load_ig2_run(folder: str | Path) -> IG2Result:
    folder = Path(folder)
    files = [folder / name for name in ("attributions.safetensors", "prompts.parquet", "run.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise BiasLabError(f"{str(folder)!r} is not a finished IG2 run folder (missing {missing[0]}): run `bias-lab ig2 --out {folder}` first")
    from safetensors.torch import load_file

    return IG2Result(folder, pd.read_parquet(files[1]), load_file(str(files[0]))["ig2"],
                     json.loads(files[2].read_text()))


def run_ig2(loaded, prompts: list[Prompt], out_dir: str | Path, settings: IG2Settings | None = None, *,
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
            started = time.perf_counter()
            results = attribute_ig2(loaded, chunk, settings, cancel=cancel)
            seconds = time.perf_counter() - started
            rows = []
            for result, item in zip(results, chunk):
                row = {column: getattr(item.prompt, column) for column in PROMPT_COLUMNS}
                row.update(p_d1=result.p_d1, p_d2=result.p_d2, gap=result.gap, unit_seconds=seconds / len(chunk))
                row.update({f"delta_l{layer}": float(delta) for layer, delta in enumerate(result.deltas)})
                rows.append(row)
            run.save_unit(name, pd.DataFrame(rows), {"ig2": torch.stack([r.scores for r in results]).contiguous()})
            done += len(chunk)
            report(progress, done, len(prepared))
        frame = run.rows(order=[name for name, _ in units])
        scores = torch.cat([run.load_unit_tensors(name)["ig2"] for name, _ in units])
        attribution_seconds = float(frame["unit_seconds"].sum())
        frame = frame.drop(columns=["unit_seconds"])
        write_safetensors_atomic(run.path("attributions.safetensors"), {"ig2": scores.float()},
                                 {"layers": loaded.num_layers, "neurons": loaded.ffn_width})
        write_parquet_atomic(run.path("prompts.parquet"), frame)
        record = store.get(run.id)
        summary = {
            "prompts": len(prepared), "skipped_prompts": len(prompts) - len(prepared),
            "mean_gap": float(frame["gap"].mean()), "attribution_s": round(attribution_seconds, 3),
            "prompts_per_s": round(len(prepared) / attribution_seconds, 4) if attribution_seconds else None,
            "max_abs_delta": float(frame.filter(like="delta_l").abs().max().max()),
        }
        write_json_atomic(run.path("run.json"), {
            "id": run.id, "kind": "ig2", "config": record.config,
            "settings": {**settings.to_dict(), "batch_size": settings.batch_size},
            "skipped": {"words": preparation.skipped, "reasons": preparation.reasons},
            "provenance": record.provenance, "timing": {"attribution_s": round(attribution_seconds, 3)},
            "summary": summary,
        })
        run.complete(summary)
    return load_ig2_run(run.dir)
