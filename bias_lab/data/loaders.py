"""Each benchmark's data loader behind one signature, ``(source, *, limit, tasks, tests)``, as the
benchmark table (:mod:`bias_lab.metrics`) names them. ``source`` is a local file or folder or a
dataset id; ``None`` means the benchmark's public default where it has one."""

from __future__ import annotations

from ..errors import BiasLabError

STEREOSET_DEFAULT = "McGill-NLP/stereoset"
CROWS_DEFAULT = "nyu-mll/crows_pairs"


def stereoset(source=None, *, tasks=("intrasentence",), **_):
    from .stereoset import load_stereoset

    return load_stereoset(source if source is not None else STEREOSET_DEFAULT, tasks=tasks)


def crows(source=None, **_):
    from .crows import load_crows

    return load_crows(source if source is not None else CROWS_DEFAULT)


def seat(source=None, *, tests=None, **_):
    from .seat import load_seat

    if source is None:
        raise BiasLabError("SEAT needs its data: a folder of sent-bias .jsonl tests, e.g. /path/to/seat")
    return load_seat(source, tests=tests)


def winobias(source=None, **_):
    from .winobias import load_winobias

    if source is None:
        raise BiasLabError("WinoBias needs its data: the folder of pro/anti type1/type2 files, e.g. /path/to/winobias")
    return load_winobias(source)


def text(source=None, *, limit=None, **_):
    from .text import load_text

    return load_text(source, limit=limit)


def ig2_prompts(source=None, **_):
    from ..neurons.prompts import load_prompt_file

    if source is None:
        raise BiasLabError("ig2-gap needs its data: a prompt JSONL file, e.g. /path/to/prompts.jsonl")
    return load_prompt_file(source)
