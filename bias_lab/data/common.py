"""Shared by the loaders: reading local files with clear errors, and Hugging Face datasets."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import BiasLabError


class DataError(BiasLabError):
    """A data file or dataset that is missing or of the wrong shape."""


def local_path(source: str | Path | None) -> Path | None:
    """The source as an existing local path, or None when it is not one (e.g. a dataset id)."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return path if path.exists() else None


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file") from None


@contextmanager
def _offline(datasets_module) -> Iterator[None]:
    import huggingface_hub.constants as hub_constants

    targets = [(hub_constants, "HF_HUB_OFFLINE"), (datasets_module.config, "HF_HUB_OFFLINE"),
               (datasets_module.config, "HF_DATASETS_OFFLINE")]
    saved = [(module, name, getattr(module, name)) for module, name in targets if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, True)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def load_hf_dataset(dataset_id: str, config: str | None, split: str, what: str, local_hint: str):
    """A Hugging Face dataset through ``datasets``; offline or absent, a clear one-line error."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"loading {what} from the Hugging Face dataset {dataset_id!r} needs the `datasets` package "
            f"(pip install datasets), or give a local file: {local_hint}"
        ) from None
    from ..models import _hub_reachable

    try:
        if _hub_reachable():
            return datasets.load_dataset(dataset_id, config, split=split)
        with _offline(datasets):  # use a cached copy if there is one, without minutes of retries
            return datasets.load_dataset(dataset_id, config, split=split)
    except Exception as error:  # network, missing config, …: all end in the same advice
        raise DataError(
            f"cannot load {what} from the Hugging Face dataset {dataset_id!r}"
            + (f" (config {config!r}, split {split!r})" if config else f" (split {split!r})")
            + f": {str(error).splitlines()[0] if str(error) else type(error).__name__}; offline, give a local file: {local_hint}"
        ) from None


def require(condition: bool, path, record, message: str) -> None:
    if not condition:
        raise DataError(f"{path}: record {record}: {message}")


def read_jsonl(path: str | Path, what: str, required: tuple[str, ...]):
    """Yield (line number, record) of a JSON-lines file, each record an object with ``required`` keys."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist: give a JSON-lines file of {{{', '.join(required)}}} records")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: expected an object with {', '.join(required)}")
        missing = [key for key in required if key not in record]
        if missing:
            raise DataError(f"{path} line {number}: missing {missing[0]!r} (each line needs {', '.join(required)})")
        yield number, record
