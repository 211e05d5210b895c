"""Group prompts for generation-based bias measurement (toxicity of continuations across groups).

One record type, :class:`GroupPrompt` (``id``, ``prompt``, ``group``, ``axis``), from four sources:

- **HolisticBias** (Smith et al. 2022): the v1.0 *inputs* folder (sentences built here, offline),
  a local CSV/JSONL of built sentences, or the hub dataset ``fairnlp/holistic-bias``;
  group = bucket, axis = axis. FASP measures bias on :data:`FASP_AXES`.
- **BOLD** (Dhamala et al. 2021): the hub dataset ``AlexaAI/bold`` or local files;
  group = category, axis = domain.
- **RealToxicityPrompts** (Gehman et al. 2020): the hub dataset ``allenai/real-toxicity-prompts`` or
  its ``prompts.jsonl``; no groups (group and axis are ``""``).
- **Custom** JSON-lines files of ``{"id", "prompt", "group"?, "axis"?}``.

Every loader checks the shape of what it reads and fails with one line naming the file and the
first bad record; offline with nothing local, the message names the local file to give instead.
Ids are given before any filter or sample, so a prompt keeps its id whatever subset is drawn.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import BiasLabError
from .common import DataError, load_hf_dataset, local_path, read_json, read_jsonl, require

HOLISTIC_BIAS_ID = "fairnlp/holistic-bias"
BOLD_ID = "AlexaAI/bold"
RTP_ID = "allenai/real-toxicity-prompts"

FASP_AXES = ("gender_and_sex", "race_ethnicity", "religion", "sexual_orientation", "nationality")
BOLD_DOMAINS = ("gender", "political_ideology", "profession", "race", "religious_ideology")

NONE = "(none)"          # the dataset's bucket of standalone noun phrases (and of the control sentences)
CONTROL_AXIS = "null"    # the dataset's axis of descriptor-free control sentences ("I'm a woman.")
_NO_PREFERENCE = "no_data"
HOLISTIC_FILES = ("descriptors.json", "nouns.json", "sentence_templates.json", "standalone_noun_phrases.json")

_HB_HINT = ("the HolisticBias v1.0 inputs folder (descriptors.json, nouns.json, sentence_templates.json, "
            "standalone_noun_phrases.json), e.g. --data /path/to/holistic_bias/v1.0, or a CSV/JSONL of built "
            "sentences with text, axis, bucket")
_BOLD_HINT = ("a BOLD JSONL/JSON of {domain, category, name, prompts} records or the official *_prompt.json "
              "files, e.g. --data /path/to/bold.jsonl")
_RTP_HINT = ("the RealToxicityPrompts prompts.jsonl ({\"prompt\": {\"text\"}, \"challenging\"} per line), "
             "e.g. --data /path/to/prompts.jsonl")
_CUSTOM_HINT = 'a JSON-lines file of {"id", "prompt", "group", "axis"} records'


@dataclass(frozen=True)
class GroupPrompt:
    """One prompt to continue. ``group``: the social group (HolisticBias bucket, BOLD category);
    ``axis``: what the groups differ in (HolisticBias axis, BOLD domain); both ``""`` when unknown."""

    id: str
    prompt: str
    group: str = ""
    axis: str = ""


# ---------------------------------------------------------------------------------------------------
# Shared helpers


def _count(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{name} {value!r} must be a whole number of at least 1 (or none for all)")
    return value


def _names(value, what: str) -> tuple[str, ...] | None:
    """None (all), or a tuple of names from a name or a list of names."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    try:
        names = tuple(value)
    except TypeError:
        raise DataError(f"{what} {value!r} must be a name or a list of names") from None
    if not names or not all(isinstance(name, str) and name for name in names):
        raise DataError(f"{what} {value!r} must be a non-empty list of names")
    return names


def _check_known(wanted: tuple[str, ...] | None, available: Iterable[str], what: str, where) -> None:
    if wanted is None:
        return
    available = list(dict.fromkeys(available))
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise DataError(f"no {what} {unknown[0]!r} in {where}: available are {', '.join(available) or 'none'}")


def _subset(items: list, *, sample: int | None, seed: int, limit: int | None) -> list:
    """A reproducible random ``sample`` (kept in source order), then the first ``limit``."""
    if sample is not None and sample < len(items):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DataError(f"seed {seed!r} must be a whole number")
        chosen = sorted(random.Random(seed).sample(range(len(items)), sample))
        items = [items[index] for index in chosen]
    return items[:limit] if limit else items


def _stem(source) -> str:
    return str(source).rsplit("/", 1)[-1].lower()


def _looks_like_file(source) -> bool:
    text = str(source)
    return text.endswith((".json", ".jsonl", ".csv")) or text.count("/") > 1 or text.startswith((".", "~", "/"))


def _read_records(path: Path, what: str, hint: str) -> list[tuple[str, object]]:
    """(where, record) of a JSONL file, a JSON list, or a CSV file."""
    if path.suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                return [(f"at line {number}", row) for number, row in enumerate(csv.DictReader(handle), start=2)]
        except UnicodeDecodeError:
            raise DataError(f"{path} is not a UTF-8 text file") from None
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of records: give {hint}")
        return [(f"at index {index}", record) for index, record in enumerate(data)]
    return [(f"at line {number}", record) for number, record in read_jsonl(path, what, ())]


def _column(dataset, names: Sequence[str], what: str, dataset_id: str) -> str:
    columns = list(getattr(dataset, "column_names", None) or [])
    for name in names:
        if name in columns:
            return name
    raise DataError(f"the Hugging Face dataset {dataset_id!r} has no {' or '.join(map(repr, names))} column "
                    f"(it has {', '.join(columns) or 'none'}): give {what} instead")


# ---------------------------------------------------------------------------------------------------
# HolisticBias


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _read_holistic_inputs(folder: Path) -> dict:
    """The four input files of a HolisticBias folder, shape-checked."""
    missing = [name for name in HOLISTIC_FILES[:3] if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} has no {missing[0]}: give {_HB_HINT}")

    path = folder / "nouns.json"
    nouns = read_json(path)
    require(isinstance(nouns, dict) and nouns, path, "top", "must be an object of gender → [[singular, plural], …]")
    for gender, pairs in nouns.items():
        require(isinstance(pairs, list), path, gender, "must be a list of [singular, plural] pairs")
        for index, pair in enumerate(pairs):
            require(isinstance(pair, list) and len(pair) == 2 and all(isinstance(w, str) and w.strip() for w in pair),
                    path, f"{gender}[{index}]", f"must be a [singular, plural] pair of words, got {pair!r}")

    path = folder / "sentence_templates.json"
    templates = read_json(path)
    if isinstance(templates, list):
        templates = {template: {} for template in templates}
    require(isinstance(templates, dict) and templates, path, "top", "must be an object of template → options")
    for template, options in templates.items():
        slots = [slot for slot in ("{noun_phrase}", "{plural_noun_phrase}") if slot in template]
        require(len(slots) == 1, path, repr(template), "needs exactly one {noun_phrase} or {plural_noun_phrase}")
        require(isinstance(options, dict), path, repr(template), "options must be an object, e.g. {}")

    path = folder / "descriptors.json"
    descriptors = read_json(path)
    require(isinstance(descriptors, dict) and descriptors, path, "top",
            "must be an object of axis → bucket → descriptors")
    for axis, buckets in descriptors.items():
        require(isinstance(buckets, dict), path, axis, "must be an object of bucket → list of descriptors")
        for bucket, entries in buckets.items():
            require(isinstance(entries, list), path, f"{axis}/{bucket}", "must be a list of descriptors")
            for index, entry in enumerate(entries):
                where = f"{axis}/{bucket}[{index}]"
                if isinstance(entry, dict):
                    descriptor = entry.get("descriptor")
                    require(isinstance(descriptor, str) and descriptor.strip(), path, where,
                            "needs a non-empty 'descriptor'")
                    require(entry.get("gender") is None or entry["gender"] in nouns, path, where,
                            f"gender {entry.get('gender')!r} is not a noun group of nouns.json ({', '.join(nouns)})")
                    require(entry.get("article") in (None, "a", "an"), path, where,
                            f"article {entry.get('article')!r} must be 'a' or 'an'")
                else:
                    require(isinstance(entry, str) and entry.strip(), path, where,
                            "must be a descriptor or an object with 'descriptor'")

    path = folder / "standalone_noun_phrases.json"
    standalone = read_json(path) if path.is_file() else {}
    require(isinstance(standalone, dict), path, "top", "must be an object of axis → noun phrases")
    for axis, phrases in standalone.items():
        require(isinstance(phrases, list), path, axis, "must be a list of noun phrases")
        for index, entry in enumerate(phrases):
            where = f"{axis}[{index}]"
            if isinstance(entry, dict):
                require(isinstance(entry.get("noun_phrase"), str) and entry["noun_phrase"].strip(), path, where,
                        "needs a non-empty 'noun_phrase'")
                require(isinstance(entry.get("plural_noun_phrase", ""), str), path, where,
                        "'plural_noun_phrase' must be text")
            else:
                require(isinstance(entry, str) and entry.strip(), path, where,
                        "must be a noun phrase or an object with 'noun_phrase'")
    return {"descriptors": descriptors, "nouns": nouns, "templates": templates, "standalone": standalone}


def _holistic_axes(inputs: dict) -> list[str]:
    return list(dict.fromkeys([*inputs["descriptors"], *inputs["standalone"], CONTROL_AXIS]))


def _fill(phrase: str, article: str, noun: str) -> str:
    return " ".join(phrase.replace("{article}", article).replace("{noun}", noun).split())


def _holistic_noun_phrases(inputs: dict, axis: str) -> list[tuple[str, str, str, str, bool]]:
    """(bucket, descriptor, singular noun phrase, plural noun phrase, has a noun) of one axis, in the
    dataset's order."""
    nouns = [(gender, singular, plural) for gender, pairs in inputs["nouns"].items() for singular, plural in pairs]
    rows = []  # (sort key, bucket, descriptor, singular, plural, has noun)

    def add(bucket, descriptor, descriptor_gender, preference, noun, plural_noun, noun_gender, singular, plural, kind):
        key = (bucket, descriptor, descriptor_gender, preference, noun, plural_noun, noun_gender, singular, plural,
               kind)
        rows.append((key, bucket, descriptor, singular, plural, noun != NONE))

    if axis == CONTROL_AXIS:
        for gender, noun, plural_noun in nouns:
            add(NONE, NONE, NONE, NONE, noun, plural_noun, gender, f"{_article(noun)} {noun}", plural_noun, "noun")
    for bucket, entries in inputs["descriptors"].get(axis, {}).items():
        for entry in entries:
            entry = entry if isinstance(entry, dict) else {"descriptor": entry}
            descriptor = entry["descriptor"]
            gender = entry.get("gender") or NONE
            preference = entry.get("preference", _NO_PREFERENCE)
            article = entry.get("article") or _article(descriptor)
            # The descriptor alone ("I'm Deaf."), used only where a template takes an adjective.
            add(bucket, descriptor, gender, preference, NONE, NONE, NONE, descriptor, descriptor, "descriptor")
            for noun_gender, noun, plural_noun in nouns:
                if gender in (NONE, noun_gender):
                    add(bucket, descriptor, gender, preference, noun, plural_noun, noun_gender,
                        f"{article} {descriptor} {noun}", f"{descriptor} {plural_noun}", "descriptor_noun")
    for entry in inputs["standalone"].get(axis, []):
        entry = entry if isinstance(entry, dict) else {"noun_phrase": entry}
        phrase = entry["noun_phrase"]
        plural_phrase = entry.get("plural_noun_phrase") or phrase
        preference = entry.get("preference", _NO_PREFERENCE)
        if "{noun}" in phrase:  # "{article} {noun} with a disability": one phrase per noun
            descriptor = _fill(phrase, "", "")
            for noun_gender, noun, plural_noun in nouns:
                add(NONE, descriptor, NONE, preference, noun, plural_noun, noun_gender,
                    _fill(phrase, _article(noun), noun), _fill(plural_phrase, "", plural_noun), "noun_descriptor")
        else:  # a fixed phrase: "a person of color"
            add(NONE, phrase, NONE, preference, NONE, NONE, "neutral", phrase, plural_phrase, "fixed_phrase")
    rows.sort(key=lambda row: row[0])
    return [row[1:] for row in rows]


def _holistic_sentences(inputs: dict, axis: str) -> list[tuple[str, str, str]]:
    """(sentence, bucket, descriptor) of one axis, in the dataset's order: noun phrases sorted as the official
    generator sorts them, then the templates in file order."""
    templates = [(template, "{plural_noun_phrase}" in template, bool(options.get("must_be_noun")))
                 for template, options in inputs["templates"].items()]
    sentences = []
    for bucket, descriptor, singular, plural, has_noun in _holistic_noun_phrases(inputs, axis):
        for template, is_plural, must_be_noun in templates:
            if must_be_noun and not has_noun:
                continue
            if is_plural:
                sentences.append((template.replace("{plural_noun_phrase}", plural), bucket, descriptor))
            else:
                sentences.append((template.replace("{noun_phrase}", singular), bucket, descriptor))
    return sentences


_Row = tuple[str, str, str, str]  # id, prompt, group, axis


def _holistic_from_inputs(folder: Path, axes: tuple[str, ...] | None, by_descriptor: bool) -> list[_Row]:
    inputs = _read_holistic_inputs(folder)
    available = _holistic_axes(inputs)
    _check_known(axes, available, "HolisticBias axis", folder)
    wanted = axes if axes is not None else [axis for axis in available if axis != CONTROL_AXIS]
    rows = []
    for axis in sorted(set(wanted)):  # the dataset's order: by axis
        rows += [(f"{axis}-{index}", text, descriptor if by_descriptor else bucket, axis)
                 for index, (text, bucket, descriptor) in enumerate(_holistic_sentences(inputs, axis))]
    return rows


def _holistic_rows(records: Iterable[tuple[str, object]], path, axes, by_descriptor: bool) -> list[_Row]:
    """(id, text, bucket, axis) of built sentences; ids per axis in source order unless given."""
    rows, counters, seen_axes = [], Counter(), []
    for where, record in records:
        require(isinstance(record, dict), path, where, "must be an object with text, axis, bucket")
        text = record.get("text", record.get("prompt"))
        require(isinstance(text, str) and text.strip(), path, where, "needs a non-empty 'text' (or 'prompt')")
        axis = record.get("axis")
        if axis is None or axis == "" or isinstance(axis, float) and axis != axis:
            axis = CONTROL_AXIS  # pandas-based readers (the hub's CSV) turn the axis "null" into a missing value
        bucket = record.get("bucket", record.get("group"))
        require(isinstance(axis, str), path, where, f"'axis' must be text, got {axis!r}")
        require(isinstance(bucket, str) and bucket != "", path, where, "needs a non-empty 'bucket' (or 'group')")
        if by_descriptor:
            bucket = record.get("descriptor")
            require(isinstance(bucket, str) and bucket != "", path, where,
                    "needs a non-empty 'descriptor' to group by descriptor")
        index = counters[axis]
        counters[axis] += 1
        seen_axes.append(axis)
        if axes is None and axis == CONTROL_AXIS or axes is not None and axis not in axes:
            continue
        given = record.get("id")
        rows.append((str(given) if given not in (None, "") else f"{axis}-{index}", text, bucket, axis))
    _check_known(axes, seen_axes, "HolisticBias axis", path)
    return rows


def load_holistic_bias(source: str | Path | None = None, *, axes: Sequence[str] | str | None = FASP_AXES,
                       limit: int | None = None, sample: int | None = None, seed: int = 0,
                       group_by: str = "bucket") -> list[GroupPrompt]:
    """HolisticBias sentences as group prompts (group = bucket, axis = axis).

    ``source``: the v1.0 *inputs* folder (sentences built here), a CSV or JSONL of built sentences
    (``text`` or ``prompt``, ``axis``, ``bucket``; an ``id`` is kept), or the hub dataset id
    (default ``fairnlp/holistic-bias``, its ``sentences`` config). ``axes``: the axes to keep
    (default FASP's five; ``None`` or ``"all"`` for all but the ``null`` axis of descriptor-free control
    sentences, which has no group: name it to get it). ``sample``: a random subset of that many
    (reproducible with ``seed``, kept in order), then ``limit``: the first N. ``group_by``:
    ``"bucket"`` (the dataset's groups) or ``"descriptor"`` (one group per descriptor: the axes
    whose only bucket is ``all`` — religion, political_ideologies, nonce — have no gap by bucket).

    How the sentences are built from the inputs (as the official generator does, so that the
    sentences equal the published dataset's):

    - a descriptor entry is a string or an object with ``descriptor`` and optional ``preference``,
      ``gender`` (it then pairs only with the nouns of that gender group) and ``article``;
    - each descriptor gives the singular noun phrase "<article> <descriptor> <noun>" and the plural
      "<descriptor> <plural noun>" for every noun of nouns.json, plus the descriptor alone
      ("I'm Deaf."), which only fills templates not marked ``must_be_noun``;
    - the article: every singular ``{noun_phrase}`` slot of the templates follows a verb or "As"
      ("I'm {noun_phrase}.", "As {noun_phrase}, …"), so a singular noun phrase always carries an
      indefinite article; the plural slots never do. It is "an" before a vowel letter (a, e, i, o, u)
      and "a" otherwise, unless the entry names its own (``"article": "a"`` for "Unitarian",
      "US-born"); this spelling rule is the dataset's, kept for equal sentences ("an European" stays);
    - standalone noun phrases join their axis in the bucket ``(none)``: one with ``{article} {noun}``
      is filled with every noun (its article from the noun), a fixed one ("a person of color") is
      used as is and only in templates not marked ``must_be_noun``;
    - order: noun phrases sorted by (bucket, descriptor, descriptor gender, preference, noun, …) as
      the generator sorts them, each through the templates in file order; ids are
      ``"<axis>-<index>"`` in that order, per axis (the same whatever axes or sample are chosen).
    """
    axes = None if axes == "all" else _names(axes, "axes")
    limit, sample = _count(limit, "limit"), _count(sample, "sample")
    if group_by not in ("bucket", "descriptor"):
        raise DataError(f"group_by {group_by!r} must be 'bucket' or 'descriptor'")
    by_descriptor = group_by == "descriptor"
    path = local_path(source)
    if path is not None and path.is_file() and path.name in HOLISTIC_FILES:
        path = path.parent  # one of the input files: its folder
    if path is not None:
        if path.is_dir():
            if not (path / "descriptors.json").is_file():
                raise DataError(f"{path} has no descriptors.json: give {_HB_HINT}")
            rows = _holistic_from_inputs(path, axes, by_descriptor)
        else:
            records = _read_records(path, "HolisticBias sentences", _HB_HINT)
            rows = _holistic_rows(records, path, axes, by_descriptor)
    else:
        dataset_id = str(source) if source is not None else HOLISTIC_BIAS_ID
        if _looks_like_file(dataset_id):
            raise DataError(f"HolisticBias data {dataset_id!r} does not exist: give {_HB_HINT}")
        dataset = load_hf_dataset(dataset_id, "sentences", "test", "HolisticBias", _HB_HINT)
        text = _column(dataset, ("text", "prompt"), _HB_HINT, dataset_id)
        _column(dataset, ("axis",), _HB_HINT, dataset_id)
        _column(dataset, ("bucket",), _HB_HINT, dataset_id)
        if by_descriptor:
            _column(dataset, ("descriptor",), _HB_HINT, dataset_id)
        descriptors = dataset["descriptor"] if by_descriptor else [None] * len(dataset)
        records = ((f"at row {index}", {"text": t, "axis": a, "bucket": b, "descriptor": d}) for index, (t, a, b, d)
                   in enumerate(zip(dataset[text], dataset["axis"], dataset["bucket"], descriptors)))
        rows = _holistic_rows(records, dataset_id, axes, by_descriptor)
    if not rows:
        raise DataError(f"{source or HOLISTIC_BIAS_ID} has no HolisticBias sentences"
                        + (f" on the axes {', '.join(axes)}" if axes else ""))
    return [GroupPrompt(*row) for row in _subset(rows, sample=sample, seed=seed, limit=limit)]


# ---------------------------------------------------------------------------------------------------
# BOLD


def _bold_records(path: Path) -> list[tuple[str, object]]:
    """(where, record) of one BOLD file: JSONL/JSON records, or an official nested ``<domain>_prompt.json``."""
    if path.suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict):  # official form: {category: {name: [prompts]}}, domain from the file name
            domain = path.stem[: -len("_prompt")] if path.stem.endswith("_prompt") else path.stem
            records = []
            for category, people in data.items():
                require(isinstance(people, dict), path, category, "must be an object of name → list of prompts")
                records += [(f"{category}/{name}", {"domain": domain, "category": category, "name": name,
                                                     "prompts": prompts}) for name, prompts in people.items()]
            return records
    return _read_records(path, "BOLD data", _BOLD_HINT)


def _bold_rows(records: Iterable[tuple[str, object]], path, domains) -> list[_Row]:
    rows, counters, seen = [], Counter(), []
    for where, record in records:
        require(isinstance(record, dict), path, where, "must be an object with domain, category, prompts")
        for key in ("domain", "category", "prompts"):
            require(key in record, path, where, f"missing {key!r} (each record needs domain, category, prompts)")
        domain, category, prompts = record["domain"], record["category"], record["prompts"]
        require(isinstance(domain, str) and domain, path, where, "'domain' must be non-empty text")
        require(isinstance(category, str) and category, path, where, "'category' must be non-empty text")
        require(isinstance(prompts, list), path, where, f"'prompts' must be a list of texts, got {prompts!r}")
        require(all(isinstance(p, str) for p in prompts), path, where, "'prompts' must be a list of texts")
        seen.append(domain)
        for prompt in prompts:
            index = counters[domain]
            counters[domain] += 1
            if prompt.strip() and (domains is None or domain in domains):
                rows.append((f"{domain}-{index}", prompt, category, domain))
    _check_known(domains, seen, "BOLD domain", path)
    return rows


def load_bold(source: str | Path | None = None, *, domains: Sequence[str] | str | None = None,
              limit: int | None = None) -> list[GroupPrompt]:
    """BOLD prompts, one per prompt text (group = category, axis = domain; ids ``"<domain>-<index>"``
    in source order). ``source``: the hub id (default ``AlexaAI/bold``), a JSONL or JSON list of
    ``{domain, category, name, prompts}`` records, an official nested ``<domain>_prompt.json``, or a
    folder of such files. Prompt texts are kept as they are (BOLD's end in a space); empty ones are
    skipped."""
    domains = _names(domains, "domains")
    limit = _count(limit, "limit")
    path = local_path(source)
    if path is not None:
        files = sorted([*path.glob("*.json"), *path.glob("*.jsonl")]) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path} has no .json or .jsonl BOLD files: give {_BOLD_HINT}")
        records = [(f"{file.name} {where}" if path.is_dir() else where, record)
                   for file in files for where, record in _bold_records(file)]
        rows = _bold_rows(records, path, domains)
    else:
        dataset_id = str(source) if source is not None else BOLD_ID
        if _looks_like_file(dataset_id):
            raise DataError(f"BOLD data {dataset_id!r} does not exist: give {_BOLD_HINT}")
        dataset = load_hf_dataset(dataset_id, None, "train", "BOLD", _BOLD_HINT)
        for name in ("domain", "category", "prompts"):
            _column(dataset, (name,), _BOLD_HINT, dataset_id)
        records = ((f"at row {index}", {"domain": d, "category": c, "prompts": p}) for index, (d, c, p)
                   in enumerate(zip(dataset["domain"], dataset["category"], dataset["prompts"])))
        rows = _bold_rows(records, dataset_id, domains)
    if not rows:
        raise DataError(f"{source or BOLD_ID} has no BOLD prompts" + (f" in {', '.join(domains)}" if domains else ""))
    return [GroupPrompt(*row) for row in (rows[:limit] if limit else rows)]


# ---------------------------------------------------------------------------------------------------
# RealToxicityPrompts


def _rtp_rows(records: Iterable[tuple[str, object]], path, challenging: bool) -> list[tuple[str, str]]:
    rows = []
    for index, (where, record) in enumerate(records):
        require(isinstance(record, dict), path, where, "must be an object with prompt.text and challenging")
        prompt = record.get("prompt")
        require(isinstance(prompt, dict) and isinstance(prompt.get("text"), str), path, where,
                "needs 'prompt' as an object with a 'text'")
        flag = record.get("challenging")
        require(flag is None or isinstance(flag, bool), path, where,
                f"'challenging' must be true or false, got {flag!r}")
        if challenging:
            require(flag is not None, path, where, "has no 'challenging' field, needed to keep the challenging prompts")
            if not flag:
                continue
        if prompt["text"].strip():
            rows.append((f"rtp-{index}", prompt["text"]))
    return rows


def load_real_toxicity_prompts(source: str | Path | None = None, *, challenging: bool = False,
                               sample: int | None = None, seed: int = 0, limit: int | None = None) -> list[GroupPrompt]:
    """RealToxicityPrompts prompts (no groups: group and axis are ``""``; ids ``"rtp-<row>"``).
    ``source``: the hub id (default ``allenai/real-toxicity-prompts``) or its ``prompts.jsonl``
    (``{"prompt": {"text", …}, "challenging", …}`` per line). ``challenging``: keep only the
    challenging ones; ``sample``: a random subset of that many (reproducible with ``seed``, kept in
    order, drawn after the challenging filter), then ``limit``: the first N."""
    limit, sample = _count(limit, "limit"), _count(sample, "sample")
    path = local_path(source)
    if path is not None:
        if path.is_dir():
            path = next(iter(sorted(path.glob("*.jsonl"))), None) or path
            if path.is_dir():
                raise DataError(f"{source} has no .jsonl file: give {_RTP_HINT}")
        rows = _rtp_rows(_read_records(path, "RealToxicityPrompts data", _RTP_HINT), path, challenging)
    else:
        dataset_id = str(source) if source is not None else RTP_ID
        if _looks_like_file(dataset_id):
            raise DataError(f"RealToxicityPrompts data {dataset_id!r} does not exist: give {_RTP_HINT}")
        dataset = load_hf_dataset(dataset_id, None, "train", "RealToxicityPrompts", _RTP_HINT)
        _column(dataset, ("prompt",), _RTP_HINT, dataset_id)
        flags = dataset["challenging"] if "challenging" in dataset.column_names else None
        if challenging and flags is None:
            raise DataError(f"the Hugging Face dataset {dataset_id!r} has no 'challenging' column: give {_RTP_HINT}")
        flags = flags if flags is not None else [None] * len(dataset)
        records = ((f"at row {index}", {"prompt": p, "challenging": c})
                   for index, (p, c) in enumerate(zip(dataset["prompt"], flags)))
        rows = _rtp_rows(records, dataset_id, challenging)
    if not rows:
        raise DataError(f"{source or RTP_ID} has no {'challenging ' if challenging else ''}prompts")
    return [GroupPrompt(id_, text) for id_, text in _subset(rows, sample=sample, seed=seed, limit=limit)]


# ---------------------------------------------------------------------------------------------------
# Custom group prompts and the check the toxicity gap needs


def load_group_prompts(path: str | Path, *, limit: int | None = None) -> list[GroupPrompt]:
    """A JSON-lines file of ``{"id", "prompt", "group", "axis"}`` records (``group`` and ``axis``
    may be left out: such prompts serve the toxicity benchmark, not the gap between groups)."""
    limit = _count(limit, "limit")
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path} is a folder: give {_CUSTOM_HINT}")
    prompts, seen = [], {}
    for number, record in read_jsonl(path, "group prompt file", ("id", "prompt")):
        where = f"{path} line {number}"
        prompt_id, text = record["id"], record["prompt"]
        if isinstance(prompt_id, bool) or not isinstance(prompt_id, (str, int)) or str(prompt_id) == "":
            raise DataError(f"{where}: 'id' must be non-empty text or a number, got {prompt_id!r}")
        prompt_id = str(prompt_id)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where} (id {prompt_id!r}): empty prompt")
        for key in ("group", "axis"):
            if not isinstance(record.get(key, ""), str):
                raise DataError(f"{where} (id {prompt_id!r}): {key!r} must be text, got {record[key]!r}")
        if prompt_id in seen:
            raise DataError(f"{where}: duplicate id {prompt_id!r} (first at line {seen[prompt_id]})")
        seen[prompt_id] = number
        prompts.append(GroupPrompt(prompt_id, text, record.get("group", ""), record.get("axis", "")))
    if not prompts:
        raise DataError(f"group prompt file {str(path)!r} has no prompts: give {_CUSTOM_HINT}")
    return prompts[:limit] if limit else prompts


def check_groups(prompts: Sequence[GroupPrompt], what: str = "toxicity-gap") -> dict[str, dict[str, int]]:
    """That ``prompts`` can measure a gap between groups: not empty, every prompt in a group, at
    least two groups on each axis. Returns {axis: {group: number of prompts}}; a one-line
    :class:`BiasLabError` otherwise."""
    prompts = list(prompts)
    if not prompts:
        raise BiasLabError(f"{what}: empty prompts: give prompts of at least two groups")
    if not any(prompt.group for prompt in prompts):
        raise BiasLabError(f"{what}: prompt file without groups: give each prompt a 'group' "
                           f"(or use HolisticBias or BOLD prompts)")
    ungrouped = next((prompt for prompt in prompts if not prompt.group), None)
    if ungrouped is not None:
        raise BiasLabError(f"{what}: prompt {ungrouped.id!r} has no group: give every prompt a 'group'")
    counts = group_counts(prompts)
    for axis, groups in counts.items():
        if len(groups) < 2:
            name = f"axis {axis!r} has" if axis else "the prompts have"
            raise BiasLabError(f"{what}: {name} one group only ({next(iter(groups))!r}): "
                               f"a gap needs at least two groups per axis")
    return counts


def group_counts(prompts: Iterable[GroupPrompt]) -> dict[str, dict[str, int]]:
    """{axis: {group: number of prompts}}, in first-seen order."""
    counts: dict[str, dict[str, int]] = {}
    for prompt in prompts:
        groups = counts.setdefault(prompt.axis, {})
        groups[prompt.group] = groups.get(prompt.group, 0) + 1
    return counts


def sniff_prompt_file(path: Path) -> str | None:
    """Which loader a local prompt file or folder is for ("custom", "holistic_bias", "bold", "rtp"),
    by its content, or None when its content does not say."""
    if path.name in HOLISTIC_FILES:
        return "holistic_bias"
    if path.is_dir():
        if (path / "descriptors.json").is_file():
            return "holistic_bias"
        if any(path.glob("*_prompt.json")):
            return "bold"
        return None
    try:
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as handle:
                first = next(csv.DictReader(handle), None)
        else:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                data = json.loads(text)
                if isinstance(data, dict):
                    return "bold" if all(isinstance(v, dict) for v in data.values()) else None
                first = data[0] if isinstance(data, list) and data else None
            else:
                line = next((line for line in text.splitlines() if line.strip()), "")
                first = json.loads(line) if line else None
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    if not isinstance(first, dict):
        return None
    if "group" in first:
        return "custom"
    if "bucket" in first and ("text" in first or "prompt" in first):
        return "holistic_bias"
    if "domain" in first and "prompts" in first:
        return "bold"
    if isinstance(first.get("prompt"), dict):
        return "rtp"
    if "id" in first and isinstance(first.get("prompt"), str):
        return "custom"
    return None


def prompt_set_by_name(source) -> str | None:
    """Which loader a dataset id or file name names ("holistic_bias", "bold", "rtp"), or None."""
    name = _stem(source).replace("_", "-")
    if "bold" in name:
        return "bold"
    if "real-toxicity" in name or "realtoxicity" in name or name.startswith("rtp"):
        return "rtp"
    if "holistic" in name:
        return "holistic_bias"
    return None
