"""CrowS-Pairs (Nangia et al. 2020): the official CSV or the HF dataset ``nyu-mll/crows_pairs``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .common import DataError, load_hf_dataset, local_path, require

HF_ID = "nyu-mll/crows_pairs"
_HINT = "the official crows_pairs_anonymized.csv, e.g. --data /path/to/crows_pairs_anonymized.csv"
_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")


@dataclass(frozen=True)
class CrowsPair:
    id: str
    sent_more: str
    sent_less: str
    direction: str  # "stereo" or "antistereo"
    bias_type: str


def load_crows(source: str | Path | None = None) -> list[CrowsPair]:
    path = local_path(source)
    if path is not None:
        if path.is_dir():
            path = next(iter(sorted(path.glob("*.csv"))), None)
            if path is None:
                raise DataError(f"{source} has no CSV file: give {_HINT}")
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: not a CrowS-Pairs CSV (no column {missing[0]!r}; needs {', '.join(_COLUMNS)})")
            pairs = []
            for number, row in enumerate(reader, start=2):
                where = f"at line {number}"
                require(row["stereo_antistereo"] in ("stereo", "antistereo"), path, where,
                        f"stereo_antistereo {row['stereo_antistereo']!r} must be 'stereo' or 'antistereo'")
                require(bool(row["sent_more"]) and bool(row["sent_less"]), path, where, "empty sentence")
                pairs.append(CrowsPair(row.get("") or str(number - 2), row["sent_more"], row["sent_less"],
                                       row["stereo_antistereo"], row["bias_type"]))
        return pairs
    if source is not None and str(source) != HF_ID:
        raise DataError(f"CrowS-Pairs file {str(source)!r} does not exist: give {_HINT}, or the dataset id {HF_ID!r}")
    dataset = load_hf_dataset(HF_ID, None, "test", "CrowS-Pairs", _HINT)
    directions = dataset.features["stereo_antistereo"].names
    types = dataset.features["bias_type"].names
    return [CrowsPair(str(row["id"]), row["sent_more"], row["sent_less"], directions[row["stereo_antistereo"]],
                      types[row["bias_type"]]) for row in dataset]
