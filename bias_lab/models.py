"""Loading a model by hub id or local folder into one object the rest of bias lab works with."""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch

from .device import resolve_device, resolve_dtype
from .errors import ModelLoadError
from .families import FamilyAdapter, adapter_for, family_for_model_type

DEFAULT_MODEL = "bert-base-uncased"
MODEL_ENV_VAR = "BIAS_LAB_MODEL"
# The subfolder in which a run that trains a whole model (distillation, debiasing) saves it.
RUN_MODEL_FOLDER = "model"
KINDS = ("auto", "masked", "causal", "encoder", "classifier")
# How messages name a model kind, article included ("an encoder", never "a encoder").
KIND_NAMES = {"masked": "a masked LM", "causal": "a causal LM", "encoder": "an encoder without an LM head",
              "classifier": "a sequence classifier"}


def kind_phrase(kind: str) -> str:
    return KIND_NAMES.get(kind, f"a {kind} model")

_MASKED_SUFFIXES = ("ForMaskedLM", "ForPreTraining")
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_CLASSIFIER_SUFFIXES = ("ForSequenceClassification",)


def default_model() -> str:
    """The model the app and the CLI use when none is given: ``$BIAS_LAB_MODEL`` or bert-base-uncased."""
    return os.environ.get(MODEL_ENV_VAR, "").strip() or DEFAULT_MODEL


@dataclass
class LoadedModel:
    """A model with its tokenizer, family adapter, device and the facts a UI shows."""

    source: str
    kind: str
    model: torch.nn.Module
    tokenizer: object
    adapter: FamilyAdapter
    device: torch.device
    dtype: torch.dtype
    attention_weights: bool = False
    # Computations that rewire the model (layer skipping, hooks) hold this lock, so that a model
    # shared between app sessions is never rewired under another session's forward pass.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def family(self) -> str:
        return self.adapter.name

    @property
    def num_layers(self) -> int:
        return self.adapter.num_layers

    @property
    def num_heads(self) -> int:
        return self.adapter.num_heads

    @property
    def head_size(self) -> int:
        return self.adapter.head_size

    @property
    def ffn_width(self) -> int:
        return self.adapter.ffn_width

    @property
    def hidden_size(self) -> int:
        return self.adapter.hidden_size

    @property
    def mask_token(self) -> str | None:
        return getattr(self.tokenizer, "mask_token", None)

    @property
    def mask_token_id(self) -> int | None:
        return getattr(self.tokenizer, "mask_token_id", None)

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def memory_bytes(self) -> int:
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "family": self.family,
            "model_type": self.model.config.model_type,
            "kind": self.kind,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "layers": self.num_layers,
            "heads": self.num_heads,
            "head_size": self.head_size,
            "hidden_size": self.hidden_size,
            "ffn_width": self.ffn_width,
            "parameters": self.parameter_count,
            "memory_mb": round(self.memory_bytes / 2**20, 1),
            "mask_token": self.mask_token,
            "vocab_size": int(self.model.config.vocab_size),
        }


def _looks_like_path(source: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else with separators is meant as a folder.
    return source.startswith(("/", ".", "~", "\\")) or source.count("/") > 1 or "\\" in source


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub, so that an offline start fails in seconds, not after retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return False
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return False
    return isinstance(found, str)


def _offline_message(source: str) -> str:
    return (
        f"cannot fetch model {source!r} from the Hugging Face Hub (no network and no cached copy): "
        "give a local model folder instead (a folder saved with save_pretrained, containing config.json)"
    )


def _resolve_source(source: str) -> tuple[str, bool]:
    """Return (where to load from, whether only local files may be used)."""
    source = str(source or "").strip()
    if not source:
        raise ModelLoadError("no model given: pass a Hugging Face hub id (e.g. bert-base-uncased) or a local folder")
    expanded = Path(os.path.expanduser(source))
    if expanded.is_dir():
        if not (expanded / "config.json").is_file() and (expanded / RUN_MODEL_FOLDER / "config.json").is_file():
            expanded = expanded / RUN_MODEL_FOLDER  # a run that trained a model (distill, debias) keeps it here
        if not (expanded / "config.json").is_file():
            raise ModelLoadError(
                f"folder {source!r} has no config.json: give a model folder saved with save_pretrained"
            )
        return str(expanded), True
    if expanded.exists():
        raise ModelLoadError(f"{source!r} is a file: give a model folder (with config.json) or a hub id")
    if _looks_like_path(source):
        raise ModelLoadError(f"model folder {source!r} does not exist: give an existing folder or a hub id")
    if _hub_cached(source):
        return source, not _hub_reachable()
    if not _hub_reachable():
        raise ModelLoadError(_offline_message(source))
    return source, False


def _kind_from_architectures(architectures: list[str] | None, causal_family: bool) -> str:
    for arch in architectures or []:
        if arch.endswith(_MASKED_SUFFIXES):
            return "masked"
        if arch.endswith(_CAUSAL_SUFFIXES):
            return "causal"
        if arch.endswith(_CLASSIFIER_SUFFIXES):
            return "classifier"
    if architectures:
        return "encoder"
    return "causal" if causal_family else "masked"


def _auto_class(kind: str):
    import transformers

    return {
        "masked": transformers.AutoModelForMaskedLM,
        "causal": transformers.AutoModelForCausalLM,
        "encoder": transformers.AutoModel,
        "classifier": transformers.AutoModelForSequenceClassification,
    }[kind]


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hush transformers' logging and progress bars; bias lab reports problems itself."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars_were_enabled:
            hf_logging.enable_progress_bar()


def _quietly(fn, *args, **kwargs):
    with quiet_transformers():
        return fn(*args, **kwargs)


def load_model(
    source: str | None = None,
    *,
    kind: str = "auto",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    attention_weights: bool = False,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a model by hub id or local folder.

    ``kind`` is ``masked`` (masked LM), ``causal`` (causal LM), ``encoder`` (bare encoder, no LM
    head), ``classifier`` (a sequence classifier, e.g. an NLI model) or ``auto`` (read from the
    checkpoint's architectures). Eager attention is used only when
    ``attention_weights`` is requested, since SDPA returns none.
    """
    import transformers

    source = str(source) if source is not None else default_model()
    if kind not in KINDS:
        raise ModelLoadError(f"unknown model kind {kind!r}: use one of {', '.join(KINDS)}")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    location, local_only = _resolve_source(source)
    common = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    try:
        config = _quietly(transformers.AutoConfig.from_pretrained, location, **common)
    except OSError as error:
        raise ModelLoadError(_offline_message(source) if not local_only else f"cannot read model config of {source!r}: {error}") from error
    except ValueError as error:
        raise ModelLoadError(f"cannot read model config of {source!r}: {error}") from error
    family = family_for_model_type(config.model_type)
    resolved_kind = _kind_from_architectures(config.architectures, family.causal) if kind == "auto" else kind
    if resolved_kind == "masked" and family.causal:
        raise ModelLoadError(f"{source!r} is a causal {family.name} model: it has no masked-LM head; use kind 'causal'")

    load_kwargs = dict(common, dtype=torch_dtype, output_loading_info=True)
    if attention_weights:
        load_kwargs["attn_implementation"] = "eager"
    try:
        model, info = _quietly(_auto_class(resolved_kind).from_pretrained, location, **load_kwargs)
    except OSError as error:
        raise ModelLoadError(f"cannot load weights of {source!r}: {error}") from error
    except ValueError as error:
        raise ModelLoadError(f"cannot load {source!r} as {kind_phrase(resolved_kind)}: {error}") from error
    missing = [key for key in info.get("missing_keys", []) if not key.endswith("position_ids")]
    if missing and resolved_kind != "encoder":
        if kind == "auto":
            model, info = _quietly(_auto_class("encoder").from_pretrained, location, **load_kwargs)
            resolved_kind = "encoder"
        else:
            raise ModelLoadError(
                f"{source!r} has no trained {resolved_kind}-LM head (missing {missing[0]}): load it with kind 'encoder'"
            )

    tokenizer = _quietly(transformers.AutoTokenizer.from_pretrained, location, **common)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Causal tokenizers often have no pad token; batching needs one and the attention mask
        # keeps it out of every score.
        tokenizer.pad_token = tokenizer.eos_token
    model.to(torch_device)
    model.eval()
    logging.getLogger(__name__).debug("loaded %s as %s on %s", source, resolved_kind, torch_device)
    return LoadedModel(
        source=source,
        kind=resolved_kind,
        model=model,
        tokenizer=tokenizer,
        adapter=adapter_for(model),
        device=torch_device,
        dtype=torch_dtype,
        attention_weights=attention_weights,
    )
