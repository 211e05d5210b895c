"""Toxicity of text, scored by any Hugging Face sequence classifier.

Bias in what a causal LM *writes* is measured by generating continuations of prompts about social
groups and scoring them with a toxicity classifier (FASP's bias measure; Xu & Hu 2022). FASP uses
Detoxify "unbiased" (``unitary/unbiased-toxic-roberta``): sigmoid over its outputs, the
``toxicity`` label, applied to prompt + continuation, lower-cased, newlines replaced by spaces.
This module loads such a classifier (a hub id or a local folder), chooses the label and the
activation, and turns texts into probabilities in [0, 1]:

    scorer = ToxicityScorer.load(lm=loaded)          # the default classifier, on the LM's device
    texts = [scored_text(p, c) for p, c in zip(prompts, continuations)]
    toxicity = scorer.score(texts)                   # np.ndarray, one probability per text
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .batching import length_batches
from .device import resolve_device, resolve_dtype
from .device import is_out_of_memory
from .errors import BiasLabError, ModelLoadError
from .families import family_for_model_type
from .models import (_hub_cached, _hub_reachable, _kind_from_architectures, _looks_like_path, _quietly,
                     _resolve_source, kind_phrase)
from .progress import report

if TYPE_CHECKING:
    from .models import LoadedModel

DEFAULT_TOXICITY_CLASSIFIER = "unitary/unbiased-toxic-roberta"
# The option through which the CLI takes a classifier; messages point people to it.
CLASSIFIER_OPTION = "--classifier"
ACTIVATIONS = ("auto", "sigmoid", "softmax")
# Label names read as "toxic" in a checkpoint that is not in TOXICITY_CLASSIFIERS, best first
# (compared ignoring case). Binary classifiers labelled only LABEL_0 / LABEL_1 match none: their
# toxic class must be named with ``label=``.
LABEL_PREFERENCE = ("toxicity", "toxic", "hate", "hateful", "hate_speech", "hate speech", "offensive", "abusive",
                    "severe_toxicity")
# A tokenizer saved without a length limit reports a huge sentinel (1e30) as its model_max_length.
_NO_TOKENIZER_LIMIT = 10**6
_FALLBACK_MAX_LENGTH = 512


@dataclass(frozen=True)
class ToxicityClassifier:
    """What bias lab knows about a toxicity checkpoint on the Hugging Face Hub."""

    label: str       # the label whose probability is "toxicity"
    activation: str  # "sigmoid" (multi-label) or "softmax" (single-label)
    description: str


TOXICITY_CLASSIFIERS: dict[str, ToxicityClassifier] = {
    "unitary/unbiased-toxic-roberta": ToxicityClassifier(
        "toxicity", "sigmoid", "Detoxify 'unbiased' (RoBERTa, Jigsaw unintended bias; FASP's classifier); multi-label"),
    "unitary/toxic-bert": ToxicityClassifier(
        "toxic", "sigmoid", "Detoxify 'original' (BERT, Jigsaw toxic comments; 6 labels, Detoxify calls 'toxic' "
        "toxicity); multi-label"),
    "facebook/roberta-hate-speech-dynabench-r4-target": ToxicityClassifier(
        "hate", "softmax", "RoBERTa hate speech, Dynabench round 4 (HF evaluate's toxicity measurement); "
        "single-label nothate/hate"),
}


# --- text -------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The text as FASP gives it to the classifier: lower-cased, every line break a space."""
    return str(text).lower().replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def scored_text(prompt: str | None, continuation: str, *, include_prompt: bool = True, normalise: bool = True) -> str:
    """Exactly the text the classifier sees for one generation, for the caller to store.

    ``prompt + continuation`` joined as they are (a decoded continuation carries its own leading
    space), or the continuation alone with ``include_prompt=False`` (Xu & Hu score only the
    continuation of a toxic prompt); normalised as :func:`normalise` unless ``normalise=False``.
    Normalising is idempotent, so :meth:`ToxicityScorer.score` (which normalises by default) sees
    this very string.
    """
    text = (str(prompt or "") if include_prompt else "") + str(continuation or "")
    return _normalise(text) if normalise else text


_normalise = normalise  # scored_text's keyword shadows the function's name


# --- choices: label, activation, length -------------------------------------------------------------


def classifier_labels(config) -> list[str]:
    """The classifier's label names in output order."""
    id2label = getattr(config, "id2label", None) or {}
    count = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return [str(id2label.get(index, id2label.get(str(index), f"LABEL_{index}"))) for index in range(count)]


def choose_label(labels: Sequence[str], source: str, label: str | int | None = None) -> int:
    """The output index read as toxicity.

    ``label`` given: that label by name (exact, then ignoring case) or by index. Otherwise the
    known checkpoint's label (:data:`TOXICITY_CLASSIFIERS`), else the first name of
    :data:`LABEL_PREFERENCE` the checkpoint has. Anything else is a one-line error listing the labels.
    """
    listed = ", ".join(repr(name) for name in labels)
    if label is not None and not (isinstance(label, str) and not label.strip()):
        if isinstance(label, int) and not isinstance(label, bool):
            if 0 <= label < len(labels):
                return label
            raise BiasLabError(f"toxicity label index {label} is out of range: {source!r} has {len(labels)} labels "
                               f"({listed})")
        wanted = str(label).strip()
        if wanted in labels:
            return list(labels).index(wanted)
        folded = [name.lower() for name in labels]
        if wanted.lower() in folded:
            return folded.index(wanted.lower())
        raise BiasLabError(f"toxicity classifier {source!r} has no label {wanted!r}: its labels are {listed}")
    known = TOXICITY_CLASSIFIERS.get(source)
    candidates = ((known.label,) if known else ()) + LABEL_PREFERENCE
    folded = [name.lower() for name in labels]
    for name in candidates:
        if name.lower() in folded:
            return folded.index(name.lower())
    raise BiasLabError(f"cannot tell which label of {source!r} is toxicity (its labels are {listed}): "
                       "name it with label=…")


def choose_activation(config, source: str = "", activation: str = "auto") -> str:
    """``sigmoid`` or ``softmax`` for a classifier's logits.

    An explicit ``activation`` wins. With ``auto``: the config's ``problem_type`` decides
    (``multi_label_classification`` → sigmoid, ``single_label_classification`` → softmax,
    ``regression`` → sigmoid, which squashes the score into [0, 1]); a classifier with a single
    output always gets a sigmoid (a softmax over one output is always 1). When ``problem_type``
    is unset: one output → sigmoid; a checkpoint of :data:`TOXICITY_CLASSIFIERS` → its known
    activation; otherwise softmax for two labels (a binary single-label classifier, e.g.
    nothate/hate) and sigmoid for three or more (most many-label toxicity models, e.g. Detoxify's,
    are multi-label). Pass ``activation`` when a checkpoint breaks this rule.
    """
    choice = str(activation or "auto").strip().lower()
    if choice not in ACTIVATIONS:
        raise BiasLabError(f"unknown activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    if choice != "auto":
        return choice
    count = len(classifier_labels(config))
    if count <= 1:
        return "sigmoid"
    problem = getattr(config, "problem_type", None)
    if problem == "multi_label_classification":
        return "sigmoid"
    if problem == "single_label_classification":
        return "softmax"
    if problem == "regression":
        return "sigmoid"
    known = TOXICITY_CLASSIFIERS.get(source)
    if known is not None:
        return known.activation
    return "softmax" if count == 2 else "sigmoid"


def classifier_max_length(tokenizer, config) -> int:
    """How many tokens the classifier reads: its tokenizer's ``model_max_length``, capped by its
    position table (``max_position_embeddings`` or ``n_positions``, less the rows its family reserves,
    e.g. RoBERTa's two); 512 when neither says."""
    limits = []
    for name in ("n_positions", "max_position_embeddings"):
        positions = getattr(config, name, None)
        if isinstance(positions, int) and positions > 0:
            try:
                offset = family_for_model_type(config.model_type).position_offset
            except BiasLabError:
                offset = 0
            limits.append(positions - offset)
            break
    own = getattr(tokenizer, "model_max_length", None)
    if isinstance(own, int) and 0 < own < _NO_TOKENIZER_LIMIT:
        limits.append(own)
    return min(limits) if limits else _FALLBACK_MAX_LENGTH


# --- loading ----------------------------------------------------------------------------------------


def classifier_offline_message(source: str) -> str:
    return (f"toxicity classifier {source!r} is not available offline (not in the Hugging Face cache): "
            f"give a local folder with {CLASSIFIER_OPTION} PATH")


def _classifier_location(source: str) -> tuple[str, bool]:
    """(where to load from, whether only local files may be used); offline without a cached copy is
    a one-line error naming the checkpoint and the local-folder option. The Hub is probed with the
    short timeout of :mod:`bias_lab.models`, so an offline start fails in seconds."""
    source = str(source or "").strip()
    if not source:
        raise ModelLoadError(f"no toxicity classifier given: pass a hub id (e.g. {DEFAULT_TOXICITY_CLASSIFIER}) "
                             f"or a local folder with {CLASSIFIER_OPTION} PATH")
    if Path(os.path.expanduser(source)).exists() or _looks_like_path(source):
        try:
            return _resolve_source(source)
        except ModelLoadError as error:
            raise ModelLoadError(f"toxicity classifier: {error}") from None
    if _hub_cached(source):
        return source, not _hub_reachable()
    if not _hub_reachable():
        raise ModelLoadError(classifier_offline_message(source))
    return source, False


def place_classifier(model: torch.nn.Module, device: torch.device) -> tuple[torch.device, str | None]:
    """Move ``model`` to ``device``; if it does not fit (out of memory), keep it on the CPU.
    Returns where it is and, after a fallback, a one-line warning."""
    if device.type == "cpu":
        return device, None
    try:
        model.to(device)
        return device, None
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not is_out_of_memory(error):
            raise
    model.to("cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    warning = f"the toxicity classifier did not fit on {device} (out of memory): it runs on the CPU"
    logging.getLogger(__name__).warning(warning)
    return torch.device("cpu"), warning


def _load_classifier(source: str, device: torch.device, dtype: torch.dtype):
    import transformers

    location, local_only = _classifier_location(source)
    is_folder = Path(location).is_dir()

    def unavailable(error: Exception, what: str) -> ModelLoadError:
        if local_only and not is_folder:
            return ModelLoadError(classifier_offline_message(source))
        return ModelLoadError(f"cannot read {what} of toxicity classifier {source!r}: {error}")

    common = {"local_files_only": local_only}
    try:
        config = _quietly(transformers.AutoConfig.from_pretrained, location, **common)
    except OSError as error:
        raise unavailable(error, "the config") from error
    except ValueError as error:
        raise ModelLoadError(f"cannot read the config of toxicity classifier {source!r}: {error}") from error
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith("ForSequenceClassification") for name in architectures):
        kind = _kind_from_architectures(architectures, causal_family=False)
        raise ModelLoadError(f"{source!r} is {kind_phrase(kind)} ({architectures[0]}), not a sequence classifier: "
                             f"give a toxicity classifier (…ForSequenceClassification) with {CLASSIFIER_OPTION}")
    try:
        model, info = _quietly(transformers.AutoModelForSequenceClassification.from_pretrained, location,
                               dtype=dtype, output_loading_info=True, **common)
    except OSError as error:
        raise unavailable(error, "the weights") from error
    except ValueError as error:
        raise ModelLoadError(f"cannot load {source!r} as a sequence classifier: {error}") from error
    missing = [key for key in info.get("missing_keys", []) if not key.endswith("position_ids")]
    if missing:
        raise ModelLoadError(f"{source!r} has no trained classification head (missing {sorted(missing)[0]}): "
                             f"give a toxicity classifier with {CLASSIFIER_OPTION}")
    try:
        tokenizer = _quietly(transformers.AutoTokenizer.from_pretrained, location, **common)
    except OSError as error:
        raise unavailable(error, "the tokenizer") from error
    except ValueError as error:
        raise ModelLoadError(f"cannot read the tokenizer of toxicity classifier {source!r}: {error}") from error
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"the tokenizer of toxicity classifier {source!r} has no padding or end token: "
                                 "texts cannot be batched")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        # Decoder-based classifiers find each row's last token through the pad id.
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


class ToxicityScorer:
    """A sequence classifier that turns texts into toxicity probabilities (see :meth:`load`)."""

    def __init__(self, source: str, model: torch.nn.Module, tokenizer, *, label: str | int | None = None,
                 activation: str = "auto", device: torch.device | None = None, batch_size: int | None = None,
                 max_length: int | None = None, warning: str | None = None):
        self.source = str(source)
        self.model = model
        self.tokenizer = tokenizer
        self.labels = classifier_labels(model.config)
        self.label_index = choose_label(self.labels, self.source, label)
        self.activation = choose_activation(model.config, self.source, activation)
        self.device = device or next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise BiasLabError(f"toxicity batch size {batch_size!r} must be a whole number of at least 1")
        self.batch_size = batch_size
        limit = classifier_max_length(tokenizer, model.config)
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
                raise BiasLabError(f"toxicity max length {max_length!r} must be a whole number of at least 2")
            if max_length > limit:
                raise BiasLabError(f"toxicity max length {max_length} is more than the {limit} tokens "
                                   f"{self.source!r} can read: give at most {limit}")
        self.max_length = max_length or limit
        self.warning = warning

    @classmethod
    def load(cls, source: str | None = None, *, label: str | int | None = None,
             device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
             batch_size: int | None = None, max_length: int | None = None, activation: str = "auto",
             lm: LoadedModel | None = None) -> ToxicityScorer:
        """Load a toxicity classifier by hub id or local folder (default :data:`DEFAULT_TOXICITY_CLASSIFIER`).

        ``label``: the label read as toxicity (name or index; default: see :func:`choose_label`).
        ``device``: where it runs; default the device of ``lm`` (the LM whose texts it scores) when
        given, else CUDA, then MPS, then CPU. If it does not fit there, it runs on the CPU and
        :attr:`warning` says so. ``dtype``: default float32. ``batch_size``: texts per forward pass
        (default: a token budget, larger on a GPU). ``max_length``: tokens read per text (default
        and most: the classifier's own, see :func:`classifier_max_length`); longer texts are cut at
        the end. ``activation``: ``auto`` (see :func:`choose_activation`), ``sigmoid`` or ``softmax``.
        """
        source = str(source).strip() if source is not None and str(source).strip() else DEFAULT_TOXICITY_CLASSIFIER
        if activation is None or str(activation).strip().lower() not in ACTIVATIONS:
            raise BiasLabError(f"unknown activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
        if device is None:
            device = lm.device if lm is not None else "auto"
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype if dtype is not None else "float32", torch_device)
        model, tokenizer = _load_classifier(source, torch_device, torch_dtype)
        placed, warning = place_classifier(model, torch_device)
        return cls(source, model, tokenizer, label=label, activation=activation, device=placed,
                   batch_size=batch_size, max_length=max_length, warning=warning)

    @property
    def label(self) -> str:
        return self.labels[self.label_index]

    def describe(self) -> str:
        text = (f"toxicity classifier {self.source} · label {self.label!r} ({self.label_index + 1} of "
                f"{len(self.labels)}) · {self.activation} · up to {self.max_length} tokens · {self.device} · "
                f"{str(self.dtype).replace('torch.', '')}")
        return f"{text} · {self.warning}" if self.warning else text

    def encode(self, texts: Sequence[str], normalise: bool = True) -> list[list[int]]:
        """Token ids per text, as the classifier reads them (normalised, cut to :attr:`max_length`)."""
        return [self._encode(text, normalise)["input_ids"] for text in texts]

    def _encode(self, text: str, normalise: bool) -> dict:
        if not isinstance(text, str):
            raise BiasLabError(f"toxicity scoring needs texts (strings), got {type(text).__name__}: {text!r}")
        return self.tokenizer(_normalise(text) if normalise else text, truncation=True, max_length=self.max_length)

    def _padded(self, encodings: list[Mapping]) -> dict[str, torch.Tensor]:
        names = [name for name in getattr(self.tokenizer, "model_input_names", ("input_ids", "attention_mask"))
                 if name in encodings[0]] or ["input_ids"]
        if "attention_mask" not in names:
            names.append("attention_mask")
        longest = max(len(e["input_ids"]) for e in encodings)
        fill = {"input_ids": int(self.tokenizer.pad_token_id), "attention_mask": 0,
                "token_type_ids": int(getattr(self.tokenizer, "pad_token_type_id", 0) or 0)}
        batch = {}
        for name in names:
            tensor = torch.full((len(encodings), longest), fill.get(name, 0), dtype=torch.long)
            for row, encoding in enumerate(encodings):
                values = encoding[name] if name in encoding else [1] * len(encoding["input_ids"])
                tensor[row, : len(values)] = torch.tensor(values, dtype=torch.long)
            batch[name] = tensor.to(self.device)
        return batch

    def logits(self, texts: Sequence[str], *, normalise: bool = True, progress: Callable | None = None,
               cancel=None) -> np.ndarray:
        """The classifier's raw outputs, [texts × labels], in the order of ``texts``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        encodings = [self._encode(text, normalise) for text in texts]
        lengths = [len(e["input_ids"]) for e in encodings]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        done = 0
        report(progress, 0, len(texts), "toxicity")
        with torch.no_grad():
            for batch in length_batches(lengths, self.batch_size, self.device):
                if cancel is not None:
                    cancel.check()
                logits = self.model(**self._padded([encodings[i] for i in batch])).logits
                out[batch] = logits.float().cpu().numpy()
                done += len(batch)
                report(progress, done, len(texts), "toxicity")
        return out

    def score(self, texts: Sequence[str], progress: Callable | None = None, cancel=None, *,
              normalise: bool = True) -> np.ndarray:
        """Toxicity probability in [0, 1] of each text (float64, in the order of ``texts``).

        Texts are normalised (:func:`normalise`) unless ``normalise=False``, sorted by length into
        batches, padded on the right and cut to :attr:`max_length` tokens. ``progress(done, total,
        message)`` is told after each batch; ``cancel.check()`` runs before each.
        """
        if isinstance(texts, str):
            raise BiasLabError("toxicity scoring needs a list of texts, not one string")
        logits = torch.from_numpy(self.logits(texts, normalise=normalise, progress=progress, cancel=cancel))
        if self.activation == "sigmoid":
            probabilities = torch.sigmoid(logits[:, self.label_index])
        else:
            probabilities = torch.softmax(logits, dim=-1)[:, self.label_index]
        return probabilities.numpy()

    def __repr__(self) -> str:
        return f"ToxicityScorer({self.describe()})"


__all__ = ["ACTIVATIONS", "DEFAULT_TOXICITY_CLASSIFIER", "LABEL_PREFERENCE", "TOXICITY_CLASSIFIERS",
           "ToxicityClassifier", "ToxicityScorer", "choose_activation", "choose_label", "classifier_labels",
           "classifier_max_length", "classifier_offline_message", "normalise", "place_classifier", "scored_text"]
