"""The Kaneko & Bollegala (2021) debiasing objective.

Sentences holding a stereotype target are pushed orthogonal to the per-layer mean embeddings of the
male and of the female attribute words (squared inner products); sentences holding an attribute
word keep their hidden states close to the original model's (squared distance). Loss = 0.2·debias +
0.8·regulariser. Layers: all, first, last, or intermediate (1–4); targets: the stereotype word's
tokens (``token``) or every token of the sentence (``sentence``); padding never counts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ..assets import read_asset_text
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import BiasLabError

if TYPE_CHECKING:
    from ..models import LoadedModel

LAYER_MODES = ("all", "first", "last", "intermediate")
TARGET_MODES = ("token", "sentence")
MODES = tuple(f"{layers}-{target}" for layers in LAYER_MODES for target in TARGET_MODES)


@dataclass(frozen=True)
class WordLists:
    male: tuple[str, ...]
    female: tuple[str, ...]
    stereotypes: tuple[str, ...]


def builtin_word_lists() -> WordLists:
    data = json.loads(read_asset_text("words", "gender_words.json"))
    return WordLists(tuple(m for m, _ in data["pairs"]), tuple(f for _, f in data["pairs"]), tuple(data["stereotypes"]))


def load_word_lists(folder: str | Path) -> WordLists:
    """The original lists: ``kaneko_bollegala_{male,female,stereotype}.txt`` (male/female paired by line)."""
    folder = Path(folder)
    lists = []
    for name in ("male", "female", "stereotype"):
        path = folder / f"kaneko_bollegala_{name}.txt"
        if not path.is_file():
            raise BiasLabError(f"{folder} has no {path.name}: give the folder of the Kaneko & Bollegala word lists")
        lists.append(tuple(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()))
    if len(lists[0]) != len(lists[1]):
        raise BiasLabError(f"{folder}: {len(lists[0])} male but {len(lists[1])} female words (they are paired by line)")
    return WordLists(*lists)


def parse_mode(mode: str) -> tuple[str, str]:
    if mode not in MODES:
        raise BiasLabError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    layers, target = mode.split("-")
    return layers, target


def select_layers(mode: str, num_layers: int) -> list[int]:
    """Indices into the hidden-state tuple (0 = embeddings, i = output of layer i)."""
    if mode == "all":
        return list(range(num_layers + 1))
    if mode == "first":
        return [0]
    if mode == "last":
        return [num_layers]
    return list(range(1, min(4, num_layers) + 1))


@dataclass
class TaggedSentence:
    text: str
    word: str
    kind: str  # "male", "female" (attribute sentences) or "target"


def tag_sentences(texts: list[str], words: WordLists, *, limit: int | None = None) -> list[TaggedSentence]:
    """Split the corpus into sentences and keep those holding exactly one kind of listed word."""
    lookup = {w.lower(): "male" for w in words.male} | {w.lower(): "female" for w in words.female}
    targets = {w.lower() for w in words.stereotypes}
    tagged = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            tokens = re.findall(r"[A-Za-z']+", sentence)
            attributes = [t for t in tokens if t.lower() in lookup]
            found = [t for t in tokens if t.lower() in targets]
            if attributes and not found:
                tagged.append(TaggedSentence(sentence, attributes[0], lookup[attributes[0].lower()]))
            elif found and not attributes:
                tagged.append(TaggedSentence(sentence, found[0], "target"))
            if limit is not None and len(tagged) >= limit:
                return tagged
    return tagged


def encode(loaded: LoadedModel, sentences: list[TaggedSentence], max_length: int = 128) -> dict[str, torch.Tensor]:
    """Token ids, attention mask, and a mask of the tagged word's tokens."""
    tokenizer = loaded.tokenizer
    batch = tokenizer([s.text for s in sentences], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length, return_offsets_mapping=True)
    word_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    for row, sentence in enumerate(sentences):
        match = re.search(rf"\b{re.escape(sentence.word)}\b", sentence.text)
        if match is None:
            continue
        for column, (start, end) in enumerate(batch["offset_mapping"][row].tolist()):
            if end > start and start < match.end() and end > match.start():
                word_mask[row, column] = True
    return {"input_ids": batch["input_ids"].to(loaded.device), "attention_mask": batch["attention_mask"].to(loaded.device),
            "word_mask": word_mask.to(loaded.device)}


class KanekoObjective:
    name = "kaneko"

    def __init__(self, loaded, texts: list[str], *, words: WordLists | None = None, mode: str = "last-token",
                 limit: int | None = None, debias_weight: float = 0.2, regulariser_weight: float = 0.8):
        self.loaded = loaded
        self.words = words or builtin_word_lists()
        self.layer_mode, self.target_mode = parse_mode(mode)
        self.layers = select_layers(self.layer_mode, loaded.num_layers)
        self.sentences = tag_sentences(texts, self.words, limit=limit)
        self.attributes = [s for s in self.sentences if s.kind != "target"]
        self.targets = [s for s in self.sentences if s.kind == "target"]
        missing = [kind for kind, group in (("male", [s for s in self.attributes if s.kind == "male"]),
                                            ("female", [s for s in self.attributes if s.kind == "female"]),
                                            ("stereotype", self.targets)) if not group]
        if missing:
            raise BiasLabError(f"the corpus has no sentence with a {missing[0]} word: give a larger corpus "
                               f"({len(self.sentences)} tagged sentences found)")
        self.weights = (debias_weight, regulariser_weight)
        self.means: torch.Tensor | None = None

    def _hidden(self, batch, *, grad: bool) -> torch.Tensor:
        with torch.set_grad_enabled(grad):
            outputs = self.loaded.adapter.base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                               output_hidden_states=True)
        return torch.stack([outputs.hidden_states[i] for i in self.layers])  # [layers, B, T, H]

    def start_epoch(self, batch_size: int = 32) -> None:
        """Per-layer mean embedding of the male and of the female attribute words, with the model
        as it is now (recomputed every epoch)."""
        sums = {kind: 0 for kind in ("male", "female")}
        counts = {kind: 0 for kind in ("male", "female")}
        for start in range(0, len(self.attributes), batch_size):
            chunk = self.attributes[start:start + batch_size]
            batch = encode(self.loaded, chunk)
            hidden = self._hidden(batch, grad=False)
            for row, sentence in enumerate(chunk):
                tokens = hidden[:, row][:, batch["word_mask"][row]]
                if tokens.shape[1]:
                    sums[sentence.kind] = sums[sentence.kind] + tokens.mean(dim=1)
                    counts[sentence.kind] += 1
        self.means = torch.stack([sums["male"] / counts["male"], sums["female"] / counts["female"]])  # [2, layers, H]

    def batches(self, batch_size: int, generator: torch.Generator) -> list[tuple[list[TaggedSentence], list[TaggedSentence]]]:
        """Shuffled (target sentences, attribute sentences) pairs of batches for one epoch."""
        targets = [self.targets[i] for i in torch.randperm(len(self.targets), generator=generator)]
        attributes = [self.attributes[i] for i in torch.randperm(len(self.attributes), generator=generator)]
        count = max(-(-len(targets) // batch_size), 1)
        per_attribute = max(1, -(-len(attributes) // count))
        return [(targets[i * batch_size:(i + 1) * batch_size], attributes[i * per_attribute:(i + 1) * per_attribute])
                for i in range(count)]

    def loss(self, batch: tuple[list[TaggedSentence], list[TaggedSentence]], original) -> dict[str, torch.Tensor]:
        """``original`` is a context manager under which the model is the unmasked original."""
        targets, attributes = batch
        debias = torch.zeros((), device=self.loaded.device)
        if targets:
            encoded = encode(self.loaded, targets)
            hidden = self._hidden(encoded, grad=True)  # [layers, B, T, H]
            keep = encoded["word_mask"] if self.target_mode == "token" else encoded["attention_mask"].bool()
            projections = torch.einsum("lbth,alh->albt", hidden, self.means.to(hidden.dtype))
            debias = (projections ** 2 * keep[None, None]).sum() / keep.sum().clamp_min(1)
        regulariser = torch.zeros((), device=self.loaded.device)
        if attributes:
            encoded = encode(self.loaded, attributes)
            with original():
                reference = self._hidden(encoded, grad=False)
            hidden = self._hidden(encoded, grad=True)
            keep = encoded["attention_mask"].bool()
            regulariser = (((hidden - reference) ** 2).sum(-1) * keep[None]).sum() / keep.sum().clamp_min(1)
        total = self.weights[0] * debias + self.weights[1] * regulariser
        return {"loss": total, "debias": debias.detach(), "regulariser": regulariser.detach()}
