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


# Group prompts for the generation benchmarks (toxicity, toxicity-gap). ``tasks`` is not theirs and is
# ignored; ``tests``, when given, names the subsets to keep: HolisticBias axes or BOLD domains.


def holistic_bias(source=None, *, limit=None, tasks=None, tests=None, axes=None, sample=None, seed=0,
                  group_by="bucket", **_):
    """HolisticBias group prompts; ``axes`` (or ``tests``) default to FASP's five, ``"all"`` for every axis."""
    from .groups import FASP_AXES, load_holistic_bias

    return load_holistic_bias(source, axes=axes or tests or FASP_AXES, limit=limit, sample=sample, seed=seed,
                              group_by=group_by)


def bold(source=None, *, limit=None, tasks=None, tests=None, domains=None, **_):
    """BOLD group prompts (group = category, axis = domain); ``domains`` (or ``tests``) keep those."""
    from .groups import load_bold

    return load_bold(source, domains=domains or tests or None, limit=limit)


def real_toxicity_prompts(source=None, *, limit=None, tasks=None, tests=None, challenging=False, sample=None, seed=0,
                          **_):
    """RealToxicityPrompts prompts (no groups)."""
    from .groups import load_real_toxicity_prompts

    return load_real_toxicity_prompts(source, challenging=challenging, sample=sample, seed=seed, limit=limit)


def group_prompts(source=None, *, limit=None, tasks=None, tests=None, **_):
    """A custom JSON-lines file of {"id", "prompt", "group", "axis"} records."""
    from .groups import load_group_prompts

    if source is None:
        raise BiasLabError('group prompts need their data: a JSONL file of {"id", "prompt", "group", "axis"} records, '
                           "e.g. /path/to/group_prompts.jsonl")
    return load_group_prompts(source, limit=limit)


def generation_prompts(source=None, *, limit=None, **options):
    """The prompts of a generation benchmark, by what ``source`` is: a JSONL whose records have
    "group" (or "id" and a text "prompt") → custom; a folder with descriptors.json, or built
    sentences with "bucket" → HolisticBias; records with "domain" and "prompts" (or *_prompt.json
    files) → BOLD; records whose "prompt" is an object → RealToxicityPrompts; otherwise a dataset id
    or file name naming holistic / bold / real-toxicity; None → HolisticBias from the hub (FASP's)."""
    from .common import DataError, local_path
    from .groups import _looks_like_file, prompt_set_by_name, sniff_prompt_file

    loaders = {"custom": group_prompts, "holistic_bias": holistic_bias, "bold": bold, "rtp": real_toxicity_prompts}
    if source is None:
        return holistic_bias(None, limit=limit, **options)
    path = local_path(source)
    kind = (sniff_prompt_file(path) or prompt_set_by_name(path)) if path is not None else prompt_set_by_name(source)
    if kind is None:
        accepted = ('a JSONL of {"id", "prompt", "group"} records, a HolisticBias v1.0 inputs folder, BOLD or '
                    "RealToxicityPrompts data, or a dataset id (fairnlp/holistic-bias, AlexaAI/bold, "
                    "allenai/real-toxicity-prompts)")
        if path is not None:
            raise DataError(f"cannot tell which prompts {path} holds: give {accepted}")
        if _looks_like_file(source):
            raise DataError(f"prompt file {str(source)!r} does not exist: give {accepted}")
        raise DataError(f"unknown prompt set {str(source)!r}: give {accepted}")
    return loaders[kind](source, limit=limit, **options)
