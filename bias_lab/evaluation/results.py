"""An evaluation result: the summary a reader wants, the per-item table behind it, and the config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import BiasLabError
from ..store import write_json_atomic, write_parquet_atomic


@dataclass
class EvalResult:
    benchmark: str
    summary: dict
    items: pd.DataFrame
    config: dict = field(default_factory=dict)

    def save(self, path: str | Path, items_path: str | Path | None = None) -> None:
        """The summary as JSON at ``path``; the per-item table as parquet beside it (or at ``items_path``)."""
        path = Path(path)
        items_path = Path(items_path) if items_path is not None else path.with_suffix(".items.parquet")
        write_parquet_atomic(items_path, self.items)
        write_json_atomic(path.with_suffix(".meta.json"), {"benchmark": self.benchmark, "config": self.config,
                                                            "items": str(items_path)})
        write_json_atomic(path, self.summary)

    @classmethod
    def load(cls, path: str | Path) -> "EvalResult":
        path = Path(path)
        meta_path = path.with_suffix(".meta.json")
        if not path.is_file() or not meta_path.is_file():
            raise BiasLabError(f"{str(path)!r} is not a saved evaluation (needs it and {meta_path.name})")
        meta = json.loads(meta_path.read_text())
        return cls(meta["benchmark"], json.loads(path.read_text()), pd.read_parquet(meta["items"]), meta["config"])
