"""The models of a comparison, as typed: a hub id, a model folder, a run folder holding ``model/``
(a distilled student), or ``MODEL+SPEC`` — the model under an intervention, where SPEC is an
intervention spec JSON (neurons = BNS, heads = head pruning, mask = a mask file), a mask
``.safetensors`` file, or a finished mask-training run (its folder or run id).

A variant is parsed without loading its model; whether the spec fits the model's shape is checked
once the model is loaded (:func:`bias_lab.compression.compare.compare_models` does so for every
variant before anything is scored)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import BiasLabError
from ..interventions import InterventionSpec
from ..run_labels import short_model

if TYPE_CHECKING:
    from ..models import LoadedModel

SEPARATOR = "+"
SPEC_FORMS = ("an intervention spec .json, a mask .safetensors file or a finished mask-training run (folder or id)")


@dataclass(frozen=True)
class ModelVariant:
    """One model of a comparison: its label (the table's ``model`` column), where it loads from and
    the intervention it runs under (None: the model as loaded)."""

    label: str
    source: str
    spec: InterventionSpec | None = None
    spec_source: str | None = None  # what was typed after '+', for the table and messages

    @property
    def text(self) -> str:
        """The variant as it would be typed."""
        return self.source + (SEPARATOR + self.spec_source if self.spec_source else "")

    def to_config(self) -> dict:
        return {"label": self.label, "source": self.source, "spec_source": self.spec_source,
                "spec": self.spec.to_dict() if self.spec is not None else None}

    @classmethod
    def from_config(cls, config: dict) -> "ModelVariant":
        spec = InterventionSpec.from_dict(config["spec"]) if config.get("spec") is not None else None
        return cls(config["label"], config["source"], spec, config.get("spec_source"))


def _model_source(text: str) -> str:
    """A folder as its absolute path (a run resumed from another working folder finds it again); a
    hub id as typed."""
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def spec_from(source: str) -> InterventionSpec:
    """The intervention a typed SPEC stands for (see the module's docstring); mask files are named
    by their absolute path, so the spec reads the same from any working folder."""
    from ..pruning.masks import MaskSet
    from ..pruning.train import MaskTrainingResult

    text = str(source).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        if not MaskTrainingResult.is_finished(path):
            raise BiasLabError(f"spec folder {text!r} is not a finished mask-training run (missing "
                               f"{MaskTrainingResult.missing_file(path)}): give {SPEC_FORMS}")
        return InterventionSpec(mask=str(MaskTrainingResult.mask_file(path).resolve()))
    if path.is_file():
        if path.suffix == ".json":
            return InterventionSpec.load(path)
        if path.suffix == ".safetensors":
            MaskSet.load(path)  # a file that is no mask fails here, in one line, not inside a benchmark
            return InterventionSpec(mask=str(path.resolve()))
        raise BiasLabError(f"spec file {text!r} is neither .json nor .safetensors: give {SPEC_FORMS}")
    from ..store import RunStore

    record = next((r for r in RunStore().list(kind=MaskTrainingResult.KIND) if r.id == text), None)
    if record is not None:
        return spec_from(str(record.artifact_dir))
    raise BiasLabError(f"spec {text!r} does not exist: give {SPEC_FORMS}")


def _spec_name(spec_source: str) -> str:
    path = Path(spec_source.rstrip("/\\"))
    return path.stem if path.suffix in (".json", ".safetensors") else path.name


def parse_variant(text: str, label: str | None = None) -> ModelVariant:
    """``MODEL`` or ``MODEL+SPEC`` → a :class:`ModelVariant`. An existing path is always a model (a
    folder may contain '+'); otherwise the text after the last '+' is the spec. The default label
    is the model's short name, plus '+' and the spec's file name."""
    text = str(text).strip()
    if not text:
        raise BiasLabError("an empty model: give a hub id, a model folder, a distilled run folder or MODEL+SPEC")
    if Path(text).expanduser().exists() or SEPARATOR not in text:
        source = _model_source(text)
        return ModelVariant(label or short_model(source), source)
    model, _, spec_text = text.rpartition(SEPARATOR)
    if not model.strip() or not spec_text.strip():
        raise BiasLabError(f"model {text!r}: MODEL+SPEC needs a model before '+' and a spec after it ({SPEC_FORMS})")
    spec = spec_from(spec_text)
    source = _model_source(model.strip())
    return ModelVariant(label or f"{short_model(source)}+{_spec_name(spec_text.strip())}", source, spec,
                        spec_text.strip())


def model_variants(models: Sequence[str | ModelVariant], labels: Sequence[str] | None = None) -> list[ModelVariant]:
    """The variants of a comparison, in order: typed models are parsed (``labels`` name them, one per
    model), variants kept. Each label must be unique — it names the model's row and its stored units."""
    models = list(models)
    if not models:
        raise BiasLabError("give at least one model to compare")
    if labels is not None and len(labels) != len(models):
        raise BiasLabError(f"{len(labels)} labels for {len(models)} models: give one label per model")
    variants = []
    for index, model in enumerate(models):
        label = labels[index] if labels is not None else None
        if label is not None and not str(label).strip():
            raise BiasLabError(f"label {index + 1} is empty: give each model a name")
        if isinstance(model, ModelVariant):
            variants.append(model if label is None else ModelVariant(str(label), model.source, model.spec,
                                                                     model.spec_source))
        else:
            variants.append(parse_variant(model, label))
    seen: dict[str, ModelVariant] = {}
    for variant in variants:
        if variant.label in seen:
            same = seen[variant.label].text == variant.text
            raise BiasLabError(f"model {variant.text!r} is given twice" if same else
                               f"two models are labelled {variant.label!r} ({seen[variant.label].text} and "
                               f"{variant.text}): give each a label of its own (--labels)")
        seen[variant.label] = variant
    return variants


def pruned_heads(loaded: LoadedModel, spec: InterventionSpec | None) -> set[tuple[int, int]]:
    """The (layer, head) pairs a spec removes: its head ablations and the heads its mask prunes
    whole. Neuron edits (BNS) remove no head."""
    if spec is None:
        return set()
    heads = {(ablation.layer, ablation.head) for ablation in spec.heads}
    if spec.mask is not None:
        from ..pruning.masks import MaskSet, surviving_heads

        table = surviving_heads(loaded, MaskSet.load(spec.mask))
        heads |= {(int(row.layer), int(row.head)) for row in table.itertuples() if not row.alive}
    return heads


def stored_model_choices(store=None) -> dict[str, str]:
    """What the run store offers a comparison: a picker label → the model as it would be typed.
    Finished distillation runs give their student (the run folder is a model source); finished
    mask-training runs give their model under the mask (``MODEL+RUN_FOLDER``). Newest first."""
    from ..pruning.train import MaskTrainingResult
    from ..runs import run_label
    from ..store import RunStore
    from .distill import DistillResult

    store = store or RunStore()
    choices = {f"student · {run_label(record, kind=False)}": str(record.artifact_dir)
               for record in DistillResult.finished_runs(store)}
    for record in MaskTrainingResult.finished_runs(store):
        model = record.model or record.config.get("model")
        if model:
            choices[f"pruned · {run_label(record, kind=False)}"] = f"{model}{SEPARATOR}{record.artifact_dir}"
    return choices


def same_model_source(first: str, second: str) -> bool:
    """Whether two model sources name the same model: the same hub id, or the same folder however written."""
    if first == second:
        return True
    paths = [Path(text).expanduser() for text in (first, second)]
    return all(path.exists() for path in paths) and paths[0].resolve() == paths[1].resolve()
