"""A sweep file (YAML or JSON): one unit kind, an output folder, a grid whose product gives the
jobs, settings shared by all jobs, and — for ``neurons`` — the prompts per unit::

    kind: neurons            # neurons | heads | evaluate | fasp | distill
    out: sweeps/bert-gender  # one ordinary run folder per job inside, plus the sweep's own run
    grid: {model: [bert-base-uncased, roberta-base], prompts: [gender-N.jsonl, gender-P.jsonl]}
    settings: {steps: 20, engine: fast}
    chunk: 100

A grid axis is a list. Its values are either one parameter's values (the axis is named after the
parameter) or mappings of several parameters set together (the axis name is then only a label),
e.g. ``metrics: [{bias: crows, bias_data: crows.csv}, {bias: seat, bias_data: seat/}]``.

Everything is checked when the file is read — kind, fields, every job's parameters, the models —
and a problem is one line naming the field (``grid.model: unknown model 'x' …``), before anything
starts."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .params import SweepFileError, coerce

FIELDS = ("kind", "out", "grid", "settings", "chunk")
SWEEP_FOLDER = "_sweep"  # the sweep's own run, inside ``out`` beside the jobs' run folders


@dataclass(frozen=True)
class Job:
    """One point of the grid: its name (its folder's name), its parameters and its run folder."""

    name: str
    params: dict
    folder: Path


@dataclass(frozen=True)
class SweepSpec:
    kind: str
    out: Path
    jobs: tuple[Job, ...]
    chunk: int | None = None
    source: str = ""  # the file it was read from, for messages
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def sweep_folder(self) -> Path:
        return self.out / SWEEP_FOLDER

    def config(self) -> dict:
        """What a resumed sweep must match: the kind, the chunk and every job's parameters."""
        return {"kind": self.kind, "chunk": self.chunk, "jobs": {job.name: job.params for job in self.jobs}}

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(job.params["model"] for job in self.jobs if job.params.get("model")))


def read_sweep_file(path: str | Path) -> dict:
    """The sweep file's mapping (YAML, of which JSON is a subset)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SweepFileError(f"{path}: not a YAML or JSON sweep file ({first})") from None
    if not isinstance(data, dict):
        raise SweepFileError(f"{path}: a sweep file is a mapping with the fields {', '.join(FIELDS)}")
    return data


def load_sweep(path: str | Path, *, check_models: bool = True) -> SweepSpec:
    """Read and check a sweep file (see :func:`parse_sweep`)."""
    return parse_sweep(read_sweep_file(path), source=str(path), check_models=check_models)


def _label(value: Any) -> str:
    """A short readable name for one grid value (a job folder's name is made of them)."""
    from ..runs import slug

    if isinstance(value, dict):
        if "name" in value:
            return slug(value["name"], 40)
        return "-".join(_label(v) for v in value.values() if not isinstance(v, dict)) or "x"
    if isinstance(value, list):
        return "-".join(_label(v) for v in value)
    text = str(value)
    if "/" in text or "\\" in text or text.endswith((".json", ".jsonl", ".txt", ".csv", ".yaml")):
        text = Path(text).name
        for suffix in (".jsonl", ".json", ".txt", ".csv", ".yaml"):
            text = text.removesuffix(suffix)
    return slug(text, 40)


def _job_names(labels: list[list[str]]) -> list[str]:
    names = ["__".join(parts) if parts else "job" for parts in labels]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}-{count + 1}")
    return unique


def parse_sweep(data: dict, *, source: str = "sweep file", check_models: bool = True) -> SweepSpec:
    """Check a sweep file's mapping and expand its grid into jobs. Errors name the field:
    ``<file>: grid.model: unknown model 'x' …``."""
    from .kinds import KIND_NAMES, sweep_kind

    try:
        return replace(_parse(data, sweep_kind, KIND_NAMES, check_models), source=source)
    except SweepFileError as error:
        raise SweepFileError(f"{source}: {error}") from None


def _parse(data: dict, sweep_kind, kind_names, check_models: bool) -> SweepSpec:
    unknown = [key for key in data if key not in FIELDS]
    if unknown:
        raise SweepFileError(f"{unknown[0]}: unknown field; a sweep file has {', '.join(FIELDS)}")
    for name in ("kind", "out", "grid"):
        if data.get(name) in (None, "", {}, []):
            raise SweepFileError(f"{name}: missing field" if name not in data or data[name] is None
                                 else f"{name}: is empty" + ("; the grid needs at least one axis with values"
                                                              if name == "grid" else ""))
    if data["kind"] not in kind_names:
        raise SweepFileError(f"kind: unknown kind {data['kind']!r}; valid kinds are {', '.join(kind_names)}")
    kind = sweep_kind(data["kind"])
    out = data["out"]
    if not isinstance(out, str):
        raise SweepFileError(f"out: must be a folder path, got {out!r}")
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise SweepFileError(f"out: {out!r} is a file, not a folder")
    chunk = data.get("chunk")
    if chunk is not None:
        if not kind.takes_chunk:
            raise SweepFileError(f"chunk: applies to neurons sweeps only (prompts per unit), not {kind.name}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise SweepFileError(f"chunk: must be a whole number of prompts of at least 1, got {chunk!r}")
    elif kind.takes_chunk:
        chunk = kind.default_chunk
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise SweepFileError(f"settings: must be a mapping of setting: value, got {settings!r}")
    grid = data["grid"]
    if not isinstance(grid, dict):
        raise SweepFileError(f"grid: must be a mapping of axis: [values], got {grid!r}")

    parameters = {param.name: param for param in kind.parameters}
    valid = ", ".join(parameters)
    for name in settings:
        if name not in parameters:
            raise SweepFileError(f"settings.{name}: unknown setting of the {kind.name} sweep kind; valid are {valid}")

    axes: list[tuple[str, list]] = []
    for axis, values in grid.items():
        values = kind.expand_axis(axis, values)
        if not isinstance(values, list):
            raise SweepFileError(f"grid.{axis}: must be a list of values, got {values!r}")
        if not values:
            raise SweepFileError(f"grid.{axis}: is empty; give at least one value")
        for index, value in enumerate(values):
            names = list(value) if isinstance(value, dict) else [axis]
            where = f"grid.{axis}[{index}]" if isinstance(value, dict) else f"grid.{axis}"
            for name in names:
                if name == "name" and isinstance(value, dict):
                    continue  # a mapping's label
                if name not in parameters:
                    raise SweepFileError(f"{where}{'.' + name if isinstance(value, dict) else ''}: unknown "
                                         f"parameter of the {kind.name} sweep kind; valid are {valid}")
                if name in settings:
                    raise SweepFileError(f"settings.{name}: also set by grid.{axis}; give it in one place")
        axes.append((axis, values))

    jobs, origins, labels = [], [], []
    for choice in itertools.product(*(values for _, values in axes)):
        params = {name: param.default for name, param in parameters.items()}
        origin = {name: f"settings.{name}" for name in settings}
        params.update(settings)
        for (axis, values), value in zip(axes, choice):
            if isinstance(value, dict):
                index = values.index(value)
                params.update({k: v for k, v in value.items() if k != "name"})
                origin.update({k: f"grid.{axis}[{index}].{k}" for k in value if k != "name"})
            else:
                params[axis] = value
                origin[axis] = f"grid.{axis}"
        checked = {name: coerce(param, params[name], origin.get(name, f"settings.{name}"))
                   for name, param in parameters.items()}
        kind.check_job(checked, origin)
        jobs.append(checked)
        origins.append(origin)
        # A job is named by the axes that vary; a grid of single values by all of them.
        labels.append([_label(value) for (_, values), value in zip(axes, choice) if len(values) > 1] or
                      [_label(value) for _, value in zip(axes, choice)])

    if check_models:
        checked_models: set[str] = set()
        for params, origin in zip(jobs, origins):
            model = params.get("model")
            if model and model not in checked_models:
                check_model(model, origin.get("model", "settings.model"))
                checked_models.add(model)
    names = _job_names(labels)
    return SweepSpec(kind.name, out_path, tuple(Job(name, params, out_path / name) for name, params in zip(names, jobs)),
                     chunk, raw=data)


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", ".", "~", "\\")) or source.count("/") > 1 or "\\" in source


def check_model(source: str, field_name: str) -> None:
    """Refuse a model that cannot be found — a folder without config.json, or a hub id that is
    neither cached nor on the Hub — naming the field; the weights are not loaded."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "model" / "config.json").is_file():
            raise SweepFileError(f"{field_name}: unknown model {source!r}: the folder has no config.json")
        return
    if path.exists() or _looks_like_path(source):
        raise SweepFileError(f"{field_name}: unknown model {source!r}: no such model folder")
    from transformers import AutoConfig

    from ..models import quiet_transformers

    try:
        with quiet_transformers():
            AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:160]
        raise SweepFileError(f"{field_name}: unknown model {source!r}: neither a model folder nor a model the Hub "
                             f"or its local cache has ({reason})") from None
