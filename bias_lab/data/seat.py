"""SEAT tests (May et al. 2019) in sent-bias form: one JSON file per test with targ1, targ2,
attr1, attr2, each ``{"category", "examples"}``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .common import DataError, read_json, require

_HINT = "a folder of SEAT .jsonl tests (sent-bias format), e.g. --data /path/to/seat"
SETS = ("targ1", "targ2", "attr1", "attr2")
# The gender tests of May et al. (career/family, math/arts, science/arts; word and sentence forms).
GENDER_TESTS = ("sent-weat6", "sent-weat6b", "sent-weat7", "sent-weat7b", "sent-weat8", "sent-weat8b")


@dataclass(frozen=True)
class SeatTest:
    name: str
    targ1: tuple[str, ...]
    targ2: tuple[str, ...]
    attr1: tuple[str, ...]
    attr2: tuple[str, ...]
    categories: tuple[str, str, str, str]


def _read_test(path: Path) -> SeatTest:
    data = read_json(path)
    require(isinstance(data, dict), path, "test", "must be an object with targ1, targ2, attr1, attr2")
    sets, categories = {}, []
    for key in SETS:
        require(key in data, path, key, f"missing {key!r}")
        block = data[key]
        require(isinstance(block, dict) and isinstance(block.get("examples"), list) and block["examples"], path, key,
                "needs a non-empty 'examples' list")
        require(all(isinstance(e, str) and e for e in block["examples"]), path, key, "examples must be strings")
        sets[key] = tuple(block["examples"])
        categories.append(str(block.get("category", key)))
    return SeatTest(path.name.split(".")[0], categories=tuple(categories), **sets)


def load_seat(source: str | Path, *, tests: list[str] | None = None) -> list[SeatTest]:
    """All tests of a folder (or one file); ``tests`` keeps only these names (e.g. sent-weat6)."""
    path = Path(source).expanduser() if source is not None else None
    if path is None or not path.exists():
        raise DataError(f"SEAT data {str(source)!r} does not exist: give {_HINT}")
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
    if not files:
        raise DataError(f"{path} has no .jsonl SEAT tests: give {_HINT}")
    loaded = [_read_test(file) for file in files]
    if tests:
        known = {t.name: t for t in loaded}
        unknown = [name for name in tests if name not in known]
        if unknown:
            raise DataError(f"no SEAT test {unknown[0]!r} in {path}: available are {', '.join(sorted(known))}")
        loaded = [known[name] for name in tests]
    return loaded


def seat_test_names(source: str | Path) -> list[str]:
    """The names of the tests in a SEAT folder (or the one test of a file), without reading them."""
    path = Path(source).expanduser()
    if path.is_file():
        return [path.name.split(".")[0]]
    if not path.is_dir():
        raise DataError(f"SEAT data {str(source)!r} does not exist: give {_HINT}")
    return sorted(file.name.split(".")[0] for file in path.glob("*.jsonl"))


def default_seat_tests(names: list[str]) -> list[str]:
    """The tests a SEAT run uses when none are named: the six gender tests where the folder has
    them (what the app and the CLI both default to), else every test."""
    return [name for name in GENDER_TESTS if name in names] or list(names)
