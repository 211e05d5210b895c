"""Tables on disk as CSV or parquet, chosen by the file's suffix, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import BiasLabError

SUFFIXES = (".csv", ".parquet")


def check_table_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise BiasLabError(f"table file {str(path)!r} must end in .csv or .parquet")
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    from .store import write_parquet_atomic, write_text_atomic

    path = check_table_path(path)
    if path.suffix == ".parquet":
        write_parquet_atomic(path, frame)
    else:
        write_text_atomic(path, frame.to_csv(index=False))
    return path


def read_table(path: str | Path, hint: str = "") -> pd.DataFrame:
    path = check_table_path(path)
    if not path.is_file():
        raise BiasLabError(f"table {str(path)!r} does not exist" + (f": {hint}" if hint else ""))
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
