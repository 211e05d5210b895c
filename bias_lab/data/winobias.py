"""WinoBias (Zhao et al. 2018): pro-/anti-stereotyped type 1 and type 2 sentences, dev and test.

Files ``{pro,anti}_stereotyped_type{1,2}.txt.{dev,test}``: one numbered sentence per line with the
entity and the pronoun in [brackets]. Line i of a pro file and line i of its anti file form a pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .common import DataError

_HINT = "the WinoBias folder with pro_stereotyped_type1.txt.dev and its siblings, e.g. --data /path/to/winobias"
_LINE = re.compile(r"^\s*\d+\s+(.*\S)\s*$")


@dataclass(frozen=True)
class WinoBiasPair:
    id: str
    type: int
    split: str
    pro: str
    anti: str


def _sentences(path: Path) -> list[str]:
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match or "[" not in line:
            raise DataError(f"{path}: line {number} is not a numbered WinoBias sentence with [brackets]: {line[:60]!r}")
        sentences.append(match.group(1).replace("[", "").replace("]", ""))
    return sentences


def load_winobias(source: str | Path, *, splits: tuple[str, ...] = ("dev", "test"),
                  types: tuple[int, ...] = (1, 2)) -> list[WinoBiasPair]:
    folder = Path(source).expanduser() if source is not None else None
    if folder is None or not folder.is_dir():
        raise DataError(f"WinoBias folder {str(source)!r} does not exist: give {_HINT}")
    pairs = []
    for split in splits:
        for kind in types:
            pro_path = folder / f"pro_stereotyped_type{kind}.txt.{split}"
            anti_path = folder / f"anti_stereotyped_type{kind}.txt.{split}"
            for path in (pro_path, anti_path):
                if not path.is_file():
                    raise DataError(f"{folder} has no {path.name}: give {_HINT}")
            pro, anti = _sentences(pro_path), _sentences(anti_path)
            if len(pro) != len(anti):
                raise DataError(f"{pro_path.name} has {len(pro)} sentences but {anti_path.name} has {len(anti)}")
            pairs.extend(WinoBiasPair(f"type{kind}-{split}-{i}", kind, split, p, a) for i, (p, a) in enumerate(zip(pro, anti)))
    return pairs
