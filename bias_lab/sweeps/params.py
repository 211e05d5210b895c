"""The parameters a sweep job takes, per kind: each a name, a default and a type, checked when the
sweep file is read so that a bad value is refused — naming its field — before anything starts.

A job's parameters are the kind's defaults, overridden by the sweep's ``settings``, overridden by
the grid's choices. Paths are made absolute here (relative to the current folder, as every
``--out`` and ``--data`` of the CLI; ``asset:FOLDER/FILE`` names a file shipped in ``assets/``), so
that workers started elsewhere read the same files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BiasLabError

ASSET_PREFIX = "asset:"


class SweepFileError(BiasLabError):
    """A sweep file that cannot run: unknown kind, missing or unknown field, bad value, empty grid."""


@dataclass(frozen=True)
class Param:
    """One job parameter. ``type``: str, int, float, bool, path (a file, folder or dataset id: made
    absolute when it exists), file / dir (must exist), floats (a list of numbers), strs (a list of
    words) or any (JSON value). ``required``: the job cannot run without it."""

    name: str
    default: Any = None
    type: str = "str"
    required: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    help: str = ""


def model_params() -> tuple[Param, ...]:
    """How every kind that loads a model names it (as the CLI's --model, --kind, --device, --dtype)."""
    return (
        Param("model", required=True, help="hub id or local model folder"),
        Param("model_kind", "auto", choices=("auto", "masked", "causal", "encoder", "classifier"),
              help="the CLI's --kind (the sweep's own `kind` is the unit kind)"),
        Param("device", "auto", help="auto, cpu, cuda, cuda:N, mps (in a Ray worker: its own GPU)"),
        Param("dtype", "float32", choices=("float32", "bfloat16", "float16")),
        Param("trust_remote_code", False, "bool"),
    )


def generation_params() -> tuple[Param, ...]:
    """The options of metrics that generate text (toxicity, toxicity-gap), with the CLI's defaults."""
    return (
        Param("classifier", None, "path"), Param("label", None),
        Param("max_new_tokens", 40, "int", minimum=1), Param("max_prompt_tokens", 22, "int", minimum=1),
        Param("samples", 1, "int", minimum=1), Param("seeds", None, "any"), Param("top_k", 50, "int", minimum=0),
        Param("top_p", 1.0, "float"), Param("temperature", 1.0, "float"), Param("greedy", False, "bool"),
        Param("continuation_only", False, "bool"),
    )


def generation_options(params: dict) -> dict:
    """The generation options as the CLI passes them (``bias_lab.cli.common.generation_options``)."""
    return {"classifier": params["classifier"], "label": params["label"], "max_new_tokens": params["max_new_tokens"],
            "max_prompt_tokens": params["max_prompt_tokens"], "samples": params["samples"], "seed": params["seed"],
            "seeds": params["seeds"], "top_k": params["top_k"], "top_p": params["top_p"],
            "temperature": params["temperature"], "do_sample": not params["greedy"],
            "include_prompt": not params["continuation_only"]}


def resolve_path(value: str) -> str:
    """``asset:FOLDER/FILE`` → the shipped file; an existing path → absolute; anything else (a hub
    dataset id such as ``wikitext``) as given."""
    if value.startswith(ASSET_PREFIX):
        from ..assets import asset_path

        return str(asset_path(*value[len(ASSET_PREFIX):].split("/")))
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _type_name(param: Param) -> str:
    return {"int": "a whole number", "float": "a number", "bool": "true or false", "floats": "a list of numbers",
            "strs": "a list of words", "file": "a file path", "dir": "a folder path", "path": "a path or dataset id",
            }.get(param.type, "text")


def coerce(param: Param, value: Any, field: str) -> Any:
    """``value`` checked against ``param`` (``field`` names it in the one-line error)."""
    def bad(why: str) -> SweepFileError:
        return SweepFileError(f"{field}: {why}")

    if value is None:
        if param.required:
            raise bad(f"needs a value ({param.help or _type_name(param)})")
        return None
    kind = param.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad(f"must be true or false, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"must be a whole number, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(f"must be a number, got {value!r}")
        value = float(value)
    elif kind == "floats":
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise bad(f"must be a non-empty list of numbers, got {value!r}")
        value = [float(v) for v in values]
    elif kind == "strs":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise bad(f"must be a non-empty list of words, got {value!r}")
        value = list(values)
    elif kind in ("str", "path", "file", "dir"):
        if not isinstance(value, str) or not value.strip():
            raise bad(f"must be {_type_name(param)}, got {value!r}")
        if kind != "str":
            try:
                value = resolve_path(value)
            except BiasLabError as error:
                raise bad(str(error)) from None
        if kind == "file" and not Path(value).is_file():
            raise bad(f"file {value!r} does not exist")
        if kind == "dir" and not Path(value).is_dir():
            raise bad(f"folder {value!r} does not exist")
    if param.choices is not None and value not in param.choices:
        raise bad(f"unknown value {value!r}: use one of {', '.join(map(str, param.choices))}")
    if param.minimum is not None and isinstance(value, (int, float)) and value < param.minimum:
        raise bad(f"{value} must be at least {param.minimum:g}")
    return value
