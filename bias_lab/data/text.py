"""Text for perplexity: a local text file (one passage per line) or a HF dataset such as wikitext."""

from __future__ import annotations

from pathlib import Path

from .common import DataError, load_hf_dataset, local_path

_HINT = "a text file, e.g. --data /path/to/wiki.test.tokens"


def load_text(source: str | Path | None = None, *, config: str | None = None, split: str = "test",
              limit: int | None = None) -> list[str]:
    """Non-empty lines of a text file, or of the ``text`` column of a HF dataset
    (default ``wikitext`` / ``wikitext-2-raw-v1``)."""
    path = local_path(source)
    if path is not None:
        if path.is_dir():
            raise DataError(f"{source} is a folder: give {_HINT}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{path} is not a UTF-8 text file") from None
    else:
        dataset_id = str(source) if source is not None else "wikitext"
        if "/" in dataset_id and dataset_id.count("/") > 1 or dataset_id.endswith((".txt", ".tokens", ".raw")):
            raise DataError(f"text file {dataset_id!r} does not exist: give {_HINT}")
        if dataset_id == "wikitext" and config is None:
            config = "wikitext-2-raw-v1"
        lines = list(load_hf_dataset(dataset_id, config, split, "text", _HINT)["text"])
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise DataError(f"{source} has no text")
    return texts[:limit] if limit else texts
