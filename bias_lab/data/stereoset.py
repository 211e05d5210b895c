"""StereoSet (Nadeem et al. 2021): the official JSON (dev.json / test.json) or the HF dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .common import DataError, load_hf_dataset, local_path, read_json, require

HF_ID = "McGill-NLP/stereoset"
LABELS = ("stereotype", "anti-stereotype", "unrelated")
DOMAINS = ("gender", "profession", "race", "religion")
_HINT = "the official StereoSet dev.json (or test.json), e.g. --data /path/to/dev.json"


@dataclass(frozen=True)
class StereoSetSentence:
    id: str
    sentence: str
    gold_label: str


@dataclass(frozen=True)
class StereoSetExample:
    id: str
    target: str
    bias_type: str
    context: str
    sentences: tuple[StereoSetSentence, ...]


@dataclass
class StereoSetData:
    intrasentence: list[StereoSetExample] = field(default_factory=list)
    intersentence: list[StereoSetExample] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.intrasentence) + len(self.intersentence)

    def first(self, limit: int) -> "StereoSetData":
        """The first ``limit`` examples of each task."""
        return StereoSetData(self.intrasentence[:limit], self.intersentence[:limit], self.source)


def _parse(records, task: str, path) -> list[StereoSetExample]:
    if not isinstance(records, list):
        raise DataError(f"{path}: 'data.{task}' must be a list of examples")
    examples = []
    for index, record in enumerate(records):
        where = record.get("id", index) if isinstance(record, dict) else index
        require(isinstance(record, dict), path, where, f"{task} example must be an object")
        for key in ("id", "target", "bias_type", "context", "sentences"):
            require(key in record, path, where, f"{task} example has no {key!r}")
        if task == "intrasentence":
            require("BLANK" in record["context"], path, where, "intrasentence context has no BLANK")
        sentences = []
        for sentence in record["sentences"]:
            require(isinstance(sentence, dict) and "sentence" in sentence and "gold_label" in sentence, path, where,
                    "each sentence needs 'sentence' and 'gold_label'")
            require(sentence["gold_label"] in LABELS, path, where,
                    f"gold_label {sentence['gold_label']!r} is not one of {', '.join(LABELS)}")
            sentences.append(StereoSetSentence(str(sentence.get("id", "")), sentence["sentence"], sentence["gold_label"]))
        require(sorted(s.gold_label for s in sentences) == sorted(LABELS), path, where,
                "needs exactly one stereotype, one anti-stereotype and one unrelated sentence")
        examples.append(StereoSetExample(str(record["id"]), record["target"], record["bias_type"], record["context"],
                                         tuple(sentences)))
    return examples


def _from_hf(config: str) -> list[StereoSetExample]:
    dataset = load_hf_dataset(HF_ID, config, "validation", "StereoSet", _HINT)
    names = dataset.features["sentences"].feature["gold_label"].names if hasattr(
        dataset.features["sentences"], "feature") else ["anti-stereotype", "stereotype", "unrelated"]
    examples = []
    for row in dataset:
        block = row["sentences"]
        sentences = tuple(StereoSetSentence(i, s, names[g] if isinstance(g, int) else g)
                          for i, s, g in zip(block["id"], block["sentence"], block["gold_label"]))
        examples.append(StereoSetExample(row["id"], row["target"], row["bias_type"], row["context"], sentences))
    return examples


def load_stereoset(source: str | Path | None = None, *, tasks: tuple[str, ...] = ("intrasentence",)) -> StereoSetData:
    """StereoSet from a local JSON file (official schema) or, given a dataset id (default
    ``McGill-NLP/stereoset``), from the Hugging Face hub's validation split."""
    path = local_path(source)
    if path is not None:
        if path.is_dir():
            candidates = [path / name for name in ("dev.json", "test.json")] + sorted(path.glob("*.json"))
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise DataError(f"{source} has no StereoSet JSON file: give {_HINT}")
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise DataError(f"{path}: not a StereoSet file (expected {{\"version\", \"data\": {{\"intrasentence\", \"intersentence\"}}}})")
        result = StereoSetData(source=str(path))
        for task in tasks:
            if task not in data["data"]:
                raise DataError(f"{path}: has no 'data.{task}'")
            setattr(result, task, _parse(data["data"][task], task, path))
        return result
    if source is not None and str(source) != HF_ID:
        raise DataError(f"StereoSet file {str(source)!r} does not exist: give {_HINT}, or the dataset id {HF_ID!r}")
    result = StereoSetData(source=HF_ID)
    for task in tasks:
        setattr(result, task, _from_hf(task))
    return result
