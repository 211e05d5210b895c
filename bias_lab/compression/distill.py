"""Knowledge distillation of a masked or causal LM into a shallower student, as a resumable run.

The teacher runs in eval mode without gradient; the student (:mod:`.student`) learns from the
softened teacher distribution, the LM loss and the cosine of last hidden states (:mod:`.losses`) on
corpus blocks (:mod:`.corpus`). Batches, masks and dropout are seeded by their position in the run,
and a checkpoint holds the student's weights and the optimizer's state, so a resumed run has the
same loss history and weights as one that was never interrupted.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator

import pandas as pd
import torch

from ..checkpoints import load_training_checkpoint, remove_training_checkpoint, save_training_checkpoint
from ..errors import BiasLabError, Cancelled
from ..models import RUN_MODEL_FOLDER, kind_phrase, quiet_transformers
from ..progress import CancelToken, report
from ..provenance import provenance
from ..results import TableResult
from ..store import RunStore
from .corpus import batches_per_epoch, cached_blocks, mask_tokens, micro_batch, next_token_labels
from .losses import IGNORE, LossWeights, distillation_loss
from .student import build_student, student_layers

if TYPE_CHECKING:
    from ..models import LoadedModel

LM_LOSSES = {"masked": "mlm", "causal": "clm"}
KL_POSITIONS = ("all", "masked")
HELD_OUT_BLOCKS = 32


@dataclass(frozen=True)
class DistillSettings:
    """The options of ``bias-lab distill``. Defaults follow DistilBERT (T 2, α_ce 5, α_lm 2, α_cos 1,
    lr 5e-4, Adam ε 1e-6, 5 % warm-up, gradient clipping at 5) except gradient accumulation (1 here,
    50 there: set ``accumulate`` for paper-size runs)."""

    layers: tuple[int, ...] | None = None   # teacher layers to copy; None: evenly spread
    num_layers: int | None = None           # student depth when ``layers`` is not given (default: half)
    init: str = "teacher"                   # teacher | random
    ffn_width: int | None = None            # a narrower FFN (the strongest neurons are kept)
    lm_loss: str | None = None              # mlm | clm; None: the teacher's own
    kl_positions: str = "all"               # all tokens, or only the masked ones (MLM)
    steps: int | None = None                # optimizer steps; or:
    epochs: int | None = None               # passes over the corpus
    temperature: float = 2.0
    alpha_ce: float = 5.0
    alpha_lm: float = 2.0
    alpha_cos: float = 1.0
    lr: float = 5e-4
    warmup: float = 0.05                    # fraction of the steps with a linear warm-up
    batch_size: int = 8
    accumulate: int = 1                     # micro-batches per optimizer step
    max_length: int = 128                   # tokens per corpus block
    max_grad_norm: float = 5.0
    seed: int = 0
    checkpoint_every: int = 100

    @property
    def weights(self) -> LossWeights:
        return LossWeights(self.temperature, self.alpha_ce, self.alpha_lm, self.alpha_cos)

    def validate(self, teacher: LoadedModel) -> None:
        if teacher.kind not in LM_LOSSES:
            raise BiasLabError(f"the teacher {teacher.source!r} is {kind_phrase(teacher.kind)}: distillation needs "
                               "a masked or a causal LM (a model with its LM head)")
        own = LM_LOSSES[teacher.kind]
        if self.lm_loss is not None and self.lm_loss not in LM_LOSSES.values():
            raise BiasLabError(f"unknown LM loss {self.lm_loss!r}: use mlm or clm")
        if self.lm_loss is not None and self.lm_loss != own:
            raise BiasLabError(f"LM loss {self.lm_loss} does not fit the teacher {teacher.source!r}, "
                               f"{kind_phrase(teacher.kind)}: use {own}")
        if self.kl_positions not in KL_POSITIONS:
            raise BiasLabError(f"unknown KL positions {self.kl_positions!r}: use all or masked")
        if self.kl_positions == "masked" and own != "mlm":
            raise BiasLabError("KL at the masked positions needs a masked teacher (MLM): use kl positions 'all'")
        if self.init == "random" and self.layers is not None:
            raise BiasLabError("layers picks the teacher layers to copy; a random student has none: give "
                               "num-layers instead")
        self.weights.validate()
        if (self.steps is None) == (self.epochs is None):
            raise BiasLabError("give either steps or epochs (how long to train), not "
                               + ("both" if self.steps is not None else "neither"))
        if self.steps is not None and self.steps < 0:
            raise BiasLabError(f"steps {self.steps} must be at least 0 (0 saves the initialised student)")
        if self.epochs is not None and self.epochs < 1:
            raise BiasLabError(f"epochs {self.epochs} must be at least 1")
        for name in ("batch_size", "accumulate", "max_length", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise BiasLabError(f"{name.replace('_', '-')} {getattr(self, name)} must be at least 1")
        if self.lr <= 0:
            raise BiasLabError(f"learning rate {self.lr} must be positive")
        if not 0 <= self.warmup < 1:
            raise BiasLabError(f"warm-up {self.warmup} must be a fraction in [0, 1)")
        if self.max_grad_norm <= 0:
            raise BiasLabError(f"max gradient norm {self.max_grad_norm} must be positive")
        if self.ffn_width is not None and not 1 <= self.ffn_width <= teacher.ffn_width:
            raise BiasLabError(f"FFN width {self.ffn_width} must be between 1 and the teacher's {teacher.ffn_width}")
        student_layers(teacher.num_layers, layers=self.layers, num_layers=self.num_layers, init=self.init)


@dataclass
class DistillResult(TableResult):
    """A distilled student: ``model/`` (save_pretrained, loads like any model folder — and the run
    folder itself is a model source), the loss history per step (the table) and ``run.json``
    (config, summary: sizes, speeds and the student's KL to the teacher before and after)."""

    KIND: ClassVar[str] = "distill"
    WHAT: ClassVar[str] = "distillation run"
    FILES: ClassVar[tuple[str, ...]] = ("history.parquet", "run.json", f"{RUN_MODEL_FOLDER}/config.json")
    HINT: ClassVar[str] = "distil a student with `bias-lab distill --out {folder}` first"

    @property
    def history(self) -> pd.DataFrame:
        return self.table

    @property
    def model_path(self) -> Path:
        return self.folder / RUN_MODEL_FOLDER

    @property
    def summary(self) -> dict:
        return self.meta.get("summary", {})


# --- forward passes ----------------------------------------------------------------------------

@contextmanager
def lm_head_at(model: torch.nn.Module, rows: torch.Tensor, columns: torch.Tensor) -> Iterator[dict]:
    """While active, the model's LM head runs only at positions (rows[i], columns[i]): its logits come
    out as [1, positions, vocabulary]. The base model's full last hidden state is left in the yielded
    dict under ``hidden``. The LM head over a large vocabulary is a big share of a pass: computing it
    where the loss reads it only saves that work."""
    captured: dict = {}

    def keep_positions(module, args, kwargs, output):
        hidden = output[0]
        captured["hidden"] = hidden
        output.last_hidden_state = hidden[rows, columns].unsqueeze(0)
        return output

    handle = model.base_model.register_forward_hook(keep_positions, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()


def logits_and_hidden(model, input_ids: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor):
    """(logits [positions, vocabulary], last hidden states [positions, hidden]) at the positions."""
    with lm_head_at(model, rows, columns) as captured:
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0]
    return logits, captured["hidden"][rows, columns]


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def micro_step_loss(teacher: LoadedModel, student, input_ids: torch.Tensor, settings: DistillSettings,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The loss terms of one micro-batch (student gradients attached)."""
    device = teacher.device
    if LM_LOSSES[teacher.kind] == "mlm":
        inputs, labels = mask_tokens(input_ids, teacher.tokenizer, generator)
    else:
        inputs, labels = input_ids, next_token_labels(input_ids)
    if settings.kl_positions == "masked":
        rows, columns = (labels != IGNORE).nonzero(as_tuple=True)
    else:
        rows, columns = torch.ones_like(inputs, dtype=torch.bool).nonzero(as_tuple=True)
    inputs, labels, rows, columns = (t.to(device) for t in (inputs, labels, rows, columns))
    with _autocast(device):
        with torch.no_grad():
            teacher_logits, teacher_hidden = logits_and_hidden(teacher.model, inputs, rows, columns)
        student_logits, student_hidden = logits_and_hidden(student, inputs, rows, columns)
    return distillation_loss(settings.weights, student_logits=student_logits, teacher_logits=teacher_logits,
                             lm_logits=student_logits, labels=labels[rows, columns],
                             student_hidden=student_hidden, teacher_hidden=teacher_hidden)


@torch.no_grad()
def kl_to_teacher(teacher: LoadedModel, student, blocks: torch.Tensor, *, batch_size: int = 8) -> float:
    """Mean KL(teacher ‖ student) per token (temperature 1, every position, both in eval mode) on
    ``blocks`` as they are (no masking)."""
    from .losses import softened_kl

    was_training = student.training
    student.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(blocks), batch_size):
            ids = blocks[start:start + batch_size].to(teacher.device)
            mask = torch.ones_like(ids)
            with _autocast(teacher.device):
                teacher_logits = teacher.model(input_ids=ids, attention_mask=mask).logits
                student_logits = student(input_ids=ids, attention_mask=mask).logits
            flat = teacher_logits.shape[-1]
            total += float(softened_kl(student_logits.reshape(-1, flat), teacher_logits.reshape(-1, flat), 1.0)) * ids.numel()
            count += ids.numel()
    finally:
        student.train(was_training)
    return total / count


@torch.no_grad()
def tokens_per_second(model, blocks: torch.Tensor, device: torch.device, repeats: int = 3) -> float:
    """Inference speed: tokens per second of forward passes over ``blocks`` (eval mode; the best of
    ``repeats`` after one warm-up pass)."""
    was_training = model.training
    model.eval()
    ids = blocks.to(device)
    mask = torch.ones_like(ids)
    best = math.inf
    try:
        for attempt in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            with _autocast(device):
                model(input_ids=ids, attention_mask=mask)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if attempt:
                best = min(best, time.perf_counter() - started)
    finally:
        model.train(was_training)
    return ids.numel() / best


# --- the run -----------------------------------------------------------------------------------

def learning_rate(settings: DistillSettings, step: int, total: int) -> float:
    """Linear warm-up over the first ``warmup`` fraction of the steps, then linear decay to 0
    (``step`` counts from 0: the rate of the update that makes step ``step + 1``)."""
    warm = math.ceil(settings.warmup * total)
    if step < warm:
        return settings.lr * (step + 1) / warm
    return settings.lr * max(0.0, (total - step) / max(1, total - warm))


def _split(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(training blocks, blocks the KL before/after is measured on, whether those are held out):
    a tenth of the corpus (at most 32 blocks) is held out when there are 10 blocks or more."""
    held = min(HELD_OUT_BLOCKS, len(blocks) // 10)
    if held == 0:
        return blocks, blocks[:8], False
    return blocks[:-held], blocks[-held:], True


def total_steps(settings: DistillSettings, training_blocks: int) -> int:
    if settings.steps is not None:
        return settings.steps
    per_epoch = math.ceil(batches_per_epoch(training_blocks, settings.batch_size) / settings.accumulate)
    return per_epoch * settings.epochs


def _micro_seed(settings: DistillSettings, index: int) -> int:
    return (settings.seed + 1) * 7_919_993 + index


def distill(teacher: LoadedModel, corpus: str | Path, out_dir: str | Path, settings: DistillSettings | None = None,
            *, store: RunStore | None = None, progress: Callable | None = None,
            cancel: CancelToken | None = None) -> DistillResult:
    """Distil ``teacher`` into a student on the text of ``corpus`` (a text file or an HF dataset id,
    its train split) and write the run folder ``out_dir``: ``model/``, ``history.parquet`` (each
    loss term per step), ``run.json``; ``corpus.safetensors`` caches the tokenised corpus. A checkpoint
    every ``checkpoint_every`` steps — and when cancelled — lets the same call resume exactly."""
    settings = settings or DistillSettings(steps=100)
    settings.validate(teacher)
    layers = student_layers(teacher.num_layers, layers=settings.layers, num_layers=settings.num_layers,
                            init=settings.init)
    out = Path(out_dir)
    config = {"teacher": teacher.source, "corpus": str(corpus),
              **{key: value for key, value in asdict(settings).items() if key != "checkpoint_every"},
              "layers": layers, "lm_loss": settings.lm_loss or LM_LOSSES[teacher.kind]}
    # The corpus is read (and its tokens cached) before the run exists: a bad corpus leaves no run behind.
    blocks = cached_blocks(teacher, corpus, settings.max_length, out)
    store = store or RunStore()
    run = store.start("distill", config, model=teacher.source, artifact_dir=out,
                      provenance=provenance(str(teacher.device), settings.seed))
    with run, teacher.lock:
        if run.resumed and DistillResult.is_finished(out) and load_training_checkpoint(out, "cpu") is None:
            finished = DistillResult.load(out)  # the same command again: nothing left to do
            run.complete(finished.summary)
            return finished
        training, measured, held_out = _split(blocks)
        total = total_steps(settings, len(training))
        student = build_student(teacher, layers, init=settings.init, ffn_width=settings.ffn_width,
                                seed=settings.seed)
        optimizer = torch.optim.AdamW(student.parameters(), lr=settings.lr, eps=1e-6, weight_decay=0.0)
        kl_before = kl_to_teacher(teacher, student, measured)
        step, history, seconds = 0, [], 0.0
        saved = load_training_checkpoint(out, teacher.device)
        if saved is not None:
            tensors, optimizer_state, state = saved
            student.load_state_dict(tensors)
            optimizer.load_state_dict(optimizer_state)
            step, history, seconds = state["step"], state["history"], state["seconds"]
        started = time.perf_counter()

        def checkpoint() -> None:
            save_training_checkpoint(out, student.state_dict(), optimizer.state_dict(),
                                     {"step": step, "history": history,
                                      "seconds": seconds + time.perf_counter() - started})

        report(progress, step, total, "resuming" if step else "")
        updating = False
        try:
            while step < total:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(settings, step, total)
                optimizer.zero_grad(set_to_none=True)
                sums = {"loss": 0.0, "ce": 0.0, "lm": 0.0, "cos": 0.0}
                for k in range(settings.accumulate):
                    if cancel is not None:
                        cancel.check()
                    index = step * settings.accumulate + k
                    torch.manual_seed(_micro_seed(settings, index))  # dropout
                    generator = torch.Generator().manual_seed(_micro_seed(settings, index))  # masking
                    ids = training[micro_batch(len(training), settings.batch_size, index, settings.seed)]
                    parts = micro_step_loss(teacher, student, ids, settings, generator)
                    (parts["loss"] / settings.accumulate).backward()
                    for name in sums:
                        sums[name] += float(parts[name].detach()) / settings.accumulate
                updating = True
                torch.nn.utils.clip_grad_norm_(student.parameters(), settings.max_grad_norm)
                optimizer.step()
                epoch = (step * settings.accumulate) // batches_per_epoch(len(training), settings.batch_size)
                history.append({"step": step + 1, "epoch": epoch, **sums, "lr": optimizer.param_groups[0]["lr"]})
                step += 1
                updating = False
                report(progress, step, total, f"loss {sums['loss']:.4f}")
                if step % settings.checkpoint_every == 0 and step < total:
                    checkpoint()
        except (Cancelled, KeyboardInterrupt):
            if not updating:  # weights and history agree: keep the work done so far
                checkpoint()
            raise
        seconds += time.perf_counter() - started
        student.eval()
        kl_after = kl_to_teacher(teacher, student, measured)
        sample = measured[:8]
        teacher_speed = tokens_per_second(teacher.model, sample, teacher.device)
        student_speed = tokens_per_second(student, sample, teacher.device)
        with quiet_transformers():
            student.save_pretrained(out / RUN_MODEL_FOLDER)
            teacher.tokenizer.save_pretrained(out / RUN_MODEL_FOLDER)
        teacher_parameters = teacher.parameter_count
        student_parameters = sum(p.numel() for p in student.parameters())
        frame = pd.DataFrame(history, columns=["step", "epoch", "loss", "ce", "lm", "cos", "lr"])
        summary = {
            "steps": step, "final_loss": float(frame["loss"].iloc[-1]) if len(frame) else None,
            "student_layers": len(layers), "teacher_layers": teacher.num_layers,
            "teacher_parameters": teacher_parameters, "student_parameters": student_parameters,
            "size_ratio": round(student_parameters / teacher_parameters, 4),
            "teacher_tokens_per_s": round(teacher_speed, 1), "student_tokens_per_s": round(student_speed, 1),
            "speedup": round(student_speed / teacher_speed, 3),
            "kl_before": round(kl_before, 6), "kl_after": round(kl_after, 6),
            "kl_measured_on": f"{len(measured)} held-out corpus blocks" if held_out
            else f"{len(measured)} training blocks (the corpus is too small to hold any out)",
            "corpus_blocks": len(blocks), "training_s": round(seconds, 3),
        }
        result = DistillResult(out, frame, {"id": run.id, "kind": "distill", "config": run.record.config,
                                            "summary": summary, "timing": {"training_s": round(seconds, 3)},
                                            "provenance": run.record.provenance})
        result.save(out)
        remove_training_checkpoint(out)
        run.complete(summary)
    return result
