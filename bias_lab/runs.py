"""Run folders and run listings for whoever starts or browses runs (the app's pages).

A run the app starts gets a folder named from its kind, model and settings: the same settings
always give the same folder (pressing Run again resumes the run), different settings never share
one (the run store refuses a folder started with another config). The readable part of the name
says what the run is; a hash of everything makes it unique."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from .run_labels import describe, describe_run, short_model
from .store import RunRecord, RunStore

MODEL_CHARACTERS = 40  # the end of a model name kept in a folder name (hub ids and folders keep the name there)
LABEL_CHARACTERS = 40  # of each readable part


def slug(text: object, size: int) -> str:
    """A file-name-safe piece of ``text``: runs of other characters become '_', its last ``size``
    characters are kept; 'x' when nothing is left."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_.")
    return cleaned[-size:].strip("_.") or "x"


def run_folder_name(kind: str, model: str, settings: Mapping[str, object], *, label: Sequence[object] = ()) -> str:
    """``ui-<kind>-<model>-<label parts>-<hash>``: the hash covers kind, model and every setting
    (so two runs differing only in a setting outside the label get two folders)."""
    digest = hashlib.sha256(json.dumps({"kind": kind, "model": model, "settings": dict(settings)}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:8]
    parts = ["ui", slug(kind, LABEL_CHARACTERS), slug(short_model(model), MODEL_CHARACTERS)]
    parts += [slug(part, LABEL_CHARACTERS) for part in label if str(part).strip()]
    return "-".join(parts + [digest])


def run_folder(kind: str, model: str, settings: Mapping[str, object], *, label: Sequence[object] = (),
               store: RunStore | None = None) -> Path:
    """The folder of a run of ``kind`` on ``model`` with ``settings``, in the run store's home."""
    return (store or RunStore()).home / "runs" / run_folder_name(kind, model, settings, label=label)


def runs_table(store: RunStore | None = None, *, status: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """The run list (``RunStore.frame``) with a ``what`` column after the kind: one line that says
    what each run computed (:func:`bias_lab.run_labels.describe`)."""
    store = store or RunStore()
    frame = store.frame(status=status, kind=kind)
    records = {record.id: record for record in store.list(status=status, kind=kind)}
    what = [describe(records[run_id]) if run_id in records else "" for run_id in frame["id"]]
    frame.insert(min(2, len(frame.columns)), "what", what)
    return frame


def run_kinds(store: RunStore | None = None) -> list[str]:
    """The kinds of the stored runs, sorted."""
    return sorted({record.kind for record in (store or RunStore()).list()})


def run_choices(store: RunStore | None = None, run_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Run id → its picker label ('id · kind · model · what it is'), for ``run_ids`` (all runs when None)."""
    records: dict[str, RunRecord] = {record.id: record for record in (store or RunStore()).list()}
    ids = list(records) if run_ids is None else list(run_ids)
    return {run_id: f"{run_id} · {describe_run(records[run_id])}" if run_id in records else run_id for run_id in ids}


def run_label(record: RunRecord, *, kind: bool = True, created: bool = False) -> str:
    """A run picker's label: what the run is (:func:`describe_run`; without its kind when ``kind`` is
    False), when it was started if ``created``, then its id — the id last, so labels stay unique."""
    text = describe_run(record)
    if not kind:
        text = text.removeprefix(f"{record.kind} · ")
    parts = [text] + ([record.created_at[:16].replace("T", " ")] if created else []) + [record.id]
    return " · ".join(parts)


def other_run_index(records: Sequence[RunRecord], first: RunRecord) -> int:
    """Index of the default second run of a comparison: another run than ``first``, of another model
    if there is one (0 when ``first`` is the only run)."""
    others = [i for i, record in enumerate(records) if record.id != first.id]
    other_models = [i for i in others if records[i].model != first.model]
    return (other_models or others or [0])[0]
