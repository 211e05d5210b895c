"""Fine-tuning a sequence classifier — under a pruning mask held fixed, or learning the mask's
scores along with the weights — and predicting with it.

With a fixed mask the model trains as ``W ⊙ M``: the mask is written into the weights (:func:`bake`:
masked weights 0) and every gradient of a masked matrix is multiplied by the mask, so a masked
weight gets no gradient, AdamW never moves it (its moments stay 0; decay keeps 0 at 0) and it never
matters. This costs one multiplication of each masked matrix's gradient per step — no masked forward
pass — and computes exactly what training through :func:`bias_lab.pruning.masks.applied` computes.
The classifier that comes out is the pruned model fine-tuned, a plain checkpoint. With
``train_scores`` the mask moves, so the weights are kept and the forward pass masks them. The
defaults are those of Hugging Face's ``run_glue.py``: 3 epochs, AdamW with lr 2e-5 decaying
linearly to 0, no warm-up, no weight decay, batch 32, sequences cut to 128 tokens, gradient norm
clipped at 1. Training is resumable: a checkpoint (:mod:`.checkpoint`) every ``checkpoint_every``
steps and when cancelled lets an interrupted run continue exactly where it stopped."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import BiasLabError, Cancelled
from ..progress import CancelToken, report
from ..pruning.masks import MaskSet, Scores, applied
from .checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from .examples import LabelledText, encode, inference_batches, padded_batch

if TYPE_CHECKING:
    from ..models import LoadedModel

REGRESSION = "regression"


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 32
    max_length: int = 128
    seed: int = 42
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    train_scores: bool = False      # learn the mask's scores with the weights instead of holding the mask fixed
    score_lr: float = 0.01
    threshold: float = 0.1          # with train_scores: a block is kept while σ(score) > threshold
    checkpoint_every: int = 500
    eval_batch_size: int = 64

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "max_length", "checkpoint_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise BiasLabError(f"{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        for name in ("lr", "score_lr"):
            if getattr(self, name) <= 0:
                raise BiasLabError(f"{name.replace('_', '-')} {getattr(self, name)} must be positive")
        if self.weight_decay < 0 or self.warmup_steps < 0 or self.max_grad_norm < 0:
            raise BiasLabError("weight decay, warm-up steps and the gradient-norm limit must not be negative")
        if not 0 < self.threshold < 1:
            raise BiasLabError(f"threshold {self.threshold} must be in (0, 1)")

    def steps(self, examples: int) -> int:
        return self.epochs * math.ceil(examples / self.batch_size)


@dataclass
class FinetuneOutcome:
    """What a fine-tuning left behind: the loss per step, the mask in effect at the end (the fixed
    mask, the one learned from the scores, or None) and the training time."""

    history: list[dict]
    mask: MaskSet | None
    seconds: float
    steps: int
    resumed_at: int = 0
    notes: list[str] = field(default_factory=list)


# --- the classifier --------------------------------------------------------------------------------

def _is_classifier(config) -> bool:
    return any(str(a).endswith("ForSequenceClassification") for a in (config.architectures or []))


def _head_labels(config) -> list[str]:
    return [str(config.id2label[i]) for i in sorted(config.id2label)] if config.id2label else []


def head_mismatch(config, labels: Sequence[str]) -> str | None:
    """Why a sequence classifier's own head cannot be fine-tuned on a task with ``labels`` (() =
    regression), or None when it can."""
    regression_head = config.problem_type == REGRESSION or config.num_labels == 1
    names = ", ".join(_head_labels(config))
    if not labels and not regression_head:
        return (f"a regression task needs a head with one output; the model has a classification head with "
                f"{config.num_labels} labels ({names})")
    if labels and regression_head:
        return f"a classification task with {len(labels)} labels needs a classification head; the model's head is a regression head"
    if labels and config.num_labels != len(labels):
        return f"the task has {len(labels)} labels ({', '.join(labels)}); the model's head has {config.num_labels} ({names})"
    return None


def normalised_label(name: str) -> str:
    """A label name compared loosely: lower case, '_' and '-' as spaces."""
    return " ".join(str(name).lower().replace("_", " ").replace("-", " ").split())


def label_positions(config, labels: Sequence[str]) -> list[int]:
    """For each of the task's labels, the index of the head output that predicts it: by name when the
    head names all of them (``config.id2label``), otherwise the task's own order (a head with generic
    names such as LABEL_0 is the one being trained)."""
    head = [normalised_label(name) for name in _head_labels(config)]
    wanted = [normalised_label(name) for name in labels]
    if wanted and all(name in head for name in wanted):
        return [head.index(name) for name in wanted]
    return list(range(len(labels)))


def _classifier_config(source: str, labels: Sequence[str], trust_remote_code: bool):
    """(location, loading options, config) of a classifier for a task with ``labels``; refuses a
    classifier whose head does not fit the task (reads the config only)."""
    import transformers

    from ..errors import ModelLoadError
    from ..families import family_for_model_type
    from ..models import _quietly, _resolve_source

    location, local_only = _resolve_source(str(source))
    common = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    try:
        config = _quietly(transformers.AutoConfig.from_pretrained, location, **common)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read model config of {source!r}: {error}") from None
    family_for_model_type(config.model_type)  # an unsupported architecture is refused by name
    if _is_classifier(config):
        problem = head_mismatch(config, labels)
        if problem is not None:
            raise BiasLabError(f"{source!r} cannot be fine-tuned on this task: {problem}; give the base model "
                               "(a masked LM or encoder) so that a new head is trained")
    else:
        config.num_labels = len(labels) or 1
        config.id2label = {i: name for i, name in enumerate(labels)} if labels else {0: "score"}
        config.label2id = {name: i for i, name in config.id2label.items()}
        config.problem_type = "single_label_classification" if labels else REGRESSION
    return location, common, config


def check_classifier(source: str, labels: Sequence[str], *, trust_remote_code: bool = False) -> None:
    """Refuse, before anything runs, a model that cannot become a classifier for ``labels``."""
    _classifier_config(source, labels, trust_remote_code)


def load_classifier(source: str, labels: Sequence[str], *, device: str | torch.device = "auto",
                    dtype: str = "float32", seed: int = 42, trust_remote_code: bool = False) -> LoadedModel:
    """A sequence classifier for a task with ``labels`` (() = regression) from ``source``: a base
    model (masked LM, encoder) gets a new head initialised with ``seed``; a classifier keeps its own
    head when it fits the task (:func:`head_mismatch` refuses it otherwise)."""
    import transformers

    from ..device import resolve_device, resolve_dtype
    from ..errors import ModelLoadError
    from ..families import adapter_for
    from ..models import LoadedModel, _quietly

    location, common, config = _classifier_config(source, labels, trust_remote_code)
    torch_device = resolve_device(device)
    torch.manual_seed(seed)  # the new head's initial weights
    try:
        model = _quietly(transformers.AutoModelForSequenceClassification.from_pretrained, location, config=config,
                         dtype=resolve_dtype(dtype, torch_device), **common)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load {source!r} as a sequence classifier: {error}") from None
    tokenizer = _quietly(transformers.AutoTokenizer.from_pretrained, location, **common)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(torch_device).eval()
    return LoadedModel(source=str(source), kind="classifier", model=model, tokenizer=tokenizer,
                       adapter=adapter_for(model), device=torch_device, dtype=model.dtype)


# --- training --------------------------------------------------------------------------------------

def _scores_from_mask(loaded: LoadedModel, mask: MaskSet, threshold: float) -> Scores:
    """Scores that reproduce ``mask`` at ``threshold``: a kept block starts at 0 (σ = 0.5), a pruned
    one at logit(threshold) − 2, below the threshold by a margin."""
    scores = Scores(loaded, mask.block, head_roles=tuple(mask.metadata.get("head_roles", ["value"])))
    pruned = math.log(threshold / (1 - threshold)) - 2.0
    with torch.no_grad():
        for name, parameter in scores.scores.items():
            kept = mask.masks.get(name.replace("__", "."))
            if kept is not None:
                parameter.copy_(torch.where(kept.to(parameter.device), 0.0, pruned))
    scores.threshold = threshold
    return scores


def _weight_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no decay on biases and normalisation weights (one-dimensional), as the HF Trainer."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _zeroing(keep: torch.Tensor) -> Callable[[torch.Tensor], None]:
    """A post-accumulate-grad hook: the parameter's gradient times ``keep`` (0 where masked)."""
    def hook(parameter: torch.Tensor) -> None:
        parameter.grad.mul_(keep)

    return hook


@contextmanager
def held_fixed(loaded: LoadedModel, mask: MaskSet) -> Iterator[dict[torch.nn.Parameter, torch.Tensor]]:
    """Inside, the model trains with ``mask`` held fixed: the mask is written into the weights
    (:func:`bake`) and the gradient of every masked weight (and of the bias of a fully masked output
    row) is zeroed as it is computed. Outside, the masked weights stay 0. Yields each masked
    parameter's keep-mask (True = trained)."""
    from ..families import stores_in_out
    from ..pruning.layout import expand

    bake(loaded, mask)
    handles, kept = [], {}
    try:
        for site in mask.check(loaded):
            matrix = expand(mask.masks[site.key].bool(), site.shape, mask.block, site, loaded.head_size)
            matrix = matrix.to(site.module.weight.device)
            alive_rows = matrix.any(dim=1)
            weight_mask = (matrix.T if stores_in_out(site.module) else matrix).contiguous()
            # once the gradient is accumulated, zero its masked entries in place (no new tensor per step)
            handles.append(site.module.weight.register_post_accumulate_grad_hook(_zeroing(weight_mask)))
            kept[site.module.weight] = weight_mask
            if site.module.bias is not None and not bool(alive_rows.all()):
                handles.append(site.module.bias.register_post_accumulate_grad_hook(_zeroing(alive_rows)))
                kept[site.module.bias] = alive_rows
        yield kept
    finally:
        for handle in handles:
            handle.remove()


def _second_moments_off_zero(optimizer: torch.optim.Optimizer, kept: dict) -> None:
    """A masked weight never moves — its gradient and so its first moment stay 0 — and its second
    moment only enters AdamW as sqrt(v) under that 0. Exact zeros take a slow path of the CPU's
    vectorised square root (about 3× a normal number, a quarter of a masked step's time on BERT-base),
    so the masked entries of v are held at 1 instead: the update stays exactly 0."""
    for parameter, keep in kept.items():
        state = optimizer.state.get(parameter)
        if state and "exp_avg_sq" in state:
            state["exp_avg_sq"].masked_fill_(~keep, 1.0)


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor of update ``step`` (0-based): linear warm-up, then linear decay to 0."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _targets(examples: Sequence[LabelledText], regression: bool, device) -> torch.Tensor:
    labels = [e.label for e in examples]
    return torch.tensor(labels, dtype=torch.float32 if regression else torch.long, device=device)


def task_loss(logits: torch.Tensor, targets: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        return torch.nn.functional.mse_loss(logits.squeeze(-1).float(), targets)
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def finetune(loaded: LoadedModel, train: Sequence[LabelledText], settings: FinetuneSettings | None = None, *,
             mask: MaskSet | None = None, checkpoint_dir: str | Path | None = None,
             progress: Callable | None = None, cancel: CancelToken | None = None, step_offset: int = 0,
             total_steps: int | None = None, message: str = "") -> FinetuneOutcome:
    """Fine-tune ``loaded`` (a sequence classifier) on ``train`` — labels already in the head's order
    — under ``mask`` held fixed (or, with ``settings.train_scores``, learning its scores too).
    ``checkpoint_dir`` makes it resumable; progress reports ``step_offset + step`` of ``total_steps``."""
    settings = settings or FinetuneSettings()
    settings.validate()
    if loaded.kind != "classifier":
        raise BiasLabError(f"fine-tuning needs a sequence classifier; {loaded.source!r} is {loaded.kind!r}")
    if not train:
        raise BiasLabError("no training examples to fine-tune on")
    regression = loaded.model.config.num_labels == 1
    model = loaded.model
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    sequences = encode(loaded, train, settings.max_length)
    batches_per_epoch = math.ceil(len(train) / settings.batch_size)
    total = settings.epochs * batches_per_epoch
    total_steps = total_steps if total_steps is not None else total

    with loaded.lock, ExitStack() as stack:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        scores, kept = None, {}
        if mask is not None and settings.train_scores:
            scores = _scores_from_mask(loaded, mask, settings.threshold)
            stack.enter_context(scores.attached())
        elif mask is not None:
            kept = stack.enter_context(held_fixed(loaded, mask))
        optimizer = torch.optim.AdamW(_weight_groups(model, settings.weight_decay), lr=settings.lr,
                                      betas=(0.9, 0.999), eps=1e-8)
        modules, optimizers = {"model": model}, {"weights": optimizer}
        if scores is not None:
            optimizers["scores"] = torch.optim.Adam(scores.parameters(), lr=settings.score_lr)
            modules["scores"] = scores
        torch.manual_seed(settings.seed)  # dropout
        step, history, seconds = 0, [], 0.0
        state = load_checkpoint(folder, modules=modules, optimizers=optimizers) if folder is not None else None
        if state is not None:
            step, history, seconds = state["step"], state["history"], state["seconds"]
        resumed_at, saved_at = step, step
        started = time.perf_counter()
        report(progress, step_offset + step, total_steps, "resuming" if step else message)

        def checkpoint() -> None:
            if folder is not None and step > saved_at:
                save_checkpoint(folder, step=step, modules=modules, optimizers=optimizers, history=history,
                                seconds=seconds + time.perf_counter() - started)

        model.train()
        try:
            position = 0
            for epoch in range(settings.epochs):
                order = torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed + epoch))
                for start in range(0, len(train), settings.batch_size):
                    if position < step:
                        position += 1
                        continue
                    if cancel is not None:
                        cancel.check()
                    chosen = order[start:start + settings.batch_size].tolist()
                    inputs = padded_batch(loaded, [sequences[i] for i in chosen])
                    targets = _targets([train[i] for i in chosen], regression, loaded.device)
                    loss = task_loss(model(**inputs).logits, targets, regression)
                    for optimizer_ in optimizers.values():
                        optimizer_.zero_grad(set_to_none=True)
                    loss.backward()
                    if settings.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                    factor = linear_schedule(step, total, settings.warmup_steps)
                    for group in optimizer.param_groups:
                        group["lr"] = settings.lr * factor
                    for optimizer_ in optimizers.values():
                        optimizer_.step()
                    if kept and (step == resumed_at or step % 1000 == 0):  # β2^1000 ≈ 0.37: far from 0 again
                        _second_moments_off_zero(optimizer, kept)
                    step += 1
                    position += 1
                    history.append({"step": step, "epoch": epoch, "loss": float(loss.detach()),
                                    "lr": settings.lr * factor})
                    report(progress, step_offset + step, total_steps,
                           f"{message} loss {history[-1]['loss']:.4f}".strip())
                    if step % settings.checkpoint_every == 0 and step < total:
                        checkpoint()
                        saved_at = step
        except (Cancelled, KeyboardInterrupt):
            checkpoint()  # stop where it is: a re-run continues from here
            raise
        finally:
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
        final = mask
        if scores is not None:
            final = scores.to_masks({**mask.metadata, "train_scores": True})
        seconds += time.perf_counter() - started
    return FinetuneOutcome(history, final, seconds, step, resumed_at)


def clear_checkpoint(checkpoint_dir: str | Path) -> None:
    remove_checkpoint(Path(checkpoint_dir))


# --- predicting ------------------------------------------------------------------------------------

def predict_logits(loaded: LoadedModel, examples: Sequence[LabelledText], *, mask: MaskSet | None = None,
                   max_length: int = 128, batch_size: int = 64, cancel: CancelToken | None = None) -> np.ndarray:
    """The head's outputs for every example, in input order ([examples, outputs], float32), with
    ``mask`` applied when given."""
    sequences = encode(loaded, examples, max_length)
    outputs = np.zeros((len(sequences), loaded.model.config.num_labels), dtype=np.float32)
    with loaded.lock, ExitStack() as stack, torch.no_grad():
        if mask is not None:
            stack.enter_context(applied(loaded, mask))
        for indices, batch in inference_batches(loaded, sequences, batch_size):
            if cancel is not None:
                cancel.check()
            outputs[indices] = loaded.model(**batch).logits.float().cpu().numpy()
    return outputs


def predictions(logits: np.ndarray, regression: bool) -> np.ndarray:
    """Class indices (argmax) or, for a regression head, its one output."""
    return logits[:, 0] if regression else logits.argmax(axis=1)


# --- a fine-tuned pruned model as a plain checkpoint -----------------------------------------------

def bake(loaded: LoadedModel, mask: MaskSet) -> None:
    """Write the mask into the weights: masked weights (and the bias of a fully masked output row)
    become 0, so the model computes without the mask exactly what it computed with it."""
    from ..families import stores_in_out
    from ..pruning.layout import expand

    with torch.no_grad():
        for site in mask.check(loaded):
            matrix = expand(mask.masks[site.key].float(), site.shape, mask.block, site, loaded.head_size)
            matrix = matrix.to(site.module.weight.device, site.module.weight.dtype)
            site.module.weight.mul_(matrix.T if stores_in_out(site.module) else matrix)
            if site.module.bias is not None:
                site.module.bias.mul_((matrix.amax(dim=1) > 0).to(site.module.bias.dtype))


def save_classifier(loaded: LoadedModel, folder: str | Path) -> Path:
    """Save the classifier and its tokenizer (safetensors) with ``save_pretrained``."""
    from ..models import quiet_transformers

    folder = Path(folder)
    with quiet_transformers():
        loaded.model.save_pretrained(folder)
        loaded.tokenizer.save_pretrained(folder)
    return folder
