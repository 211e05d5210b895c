"""One line that says what a stored run is — for `bias-lab runs list` and the app's run pickers.

A list of bare ids and timestamps makes a reader open each run to find the one they want; the line
names what was computed (benchmark and data, demographic pair, metrics, block size) and its
headline numbers, or the error of a failed run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def short_model(model: str | None) -> str:
    """A hub id as it is; a local folder by its last part (the full path is in `runs show`)."""
    if not model:
        return "?"
    return Path(str(model)).name if Path(str(model)).expanduser().exists() else str(model)


def ig2_facts(record) -> dict:
    """Dimension, modifier type, pair and target of an IG2 run: from its config, or — for a run that
    did not record them (prompts typed in the app, a prompt file) — from its prompt table."""
    config = record.config
    facts = {"dimension": config.get("dimension"), "modifier": config.get("modifier"), "pair": config.get("pair"),
             "target": config.get("target")}
    prompts = Path(record.artifact_dir) / "prompts.parquet"
    if not facts["pair"] and prompts.is_file():
        try:
            first = pd.read_parquet(prompts, columns=["d1", "d2", "dimension", "modifier_type"]).iloc[0]
        except (OSError, KeyError, IndexError, ValueError):
            return facts
        facts["pair"] = [first["d1"], first["d2"]]
        facts["dimension"] = facts["dimension"] or first["dimension"] or None
        facts["modifier"] = facts["modifier"] or first["modifier_type"] or None
    return facts


def _ig2(record) -> str:
    config, summary, facts = record.config, record.summary, ig2_facts(record)
    subject = " ".join(str(part) for part in (facts["dimension"], facts["modifier"]) if part)
    if facts["pair"]:
        subject = f"{subject} {'–'.join(facts['pair'])}".strip()
    if config.get("prompts_file"):
        subject = f"{subject} ({Path(config['prompts_file']).name})".strip()
    return (f"{subject or 'prompts'}, target {facts['target']}: {summary.get('prompts', config.get('prompts'))} prompts"
            + (f", mean gap {_number(summary['mean_gap'])}" if "mean_gap" in summary else ""))


def _evaluate(record) -> str:
    from .evaluation.record import data_label
    from .metrics import headline_text

    config = record.config
    benchmark = config.get("benchmark", "?")
    name = Path(config["data"]).name if config.get("data") else None  # the file, not its whole path
    data = data_label(name, config.get("limit"), config.get("items"))
    return (f"{benchmark} on {data}, {record.summary.get('method', config.get('method', 'original'))}: "
            f"{headline_text(benchmark, record.summary)}")


def _heads(record) -> str:
    config, summary = record.config, record.summary
    perf, bias = config.get("perf") or "none", config.get("bias") or "none"
    text = f"perf {perf}, bias {bias}: {summary.get('heads', '?')} heads"
    baselines = [f"{name} {_number(summary[key])}" for name, key in ((perf, "baseline_perf"), (bias, "baseline_bias"))
                 if name != "none" and key in summary]
    return text + (", baseline " + ", ".join(baselines) if baselines else "")


def _importance(record) -> str:
    config = record.config
    steps = f", {config['iterative']} pruning steps" if config.get("iterative") else ""
    return f"gradient importance on {config.get('perf_data')}{steps}: {record.summary.get('heads', '?')} heads"


def _prune(record) -> str:
    config, summary = record.config, record.summary
    text = f"{config.get('objective')} mask, block {config.get('block')}"
    if "density" in summary:
        text += f": density {summary['density']:.1f} %, {summary.get('pruned_heads', 0)} heads pruned"
    return text


def _debias(record) -> str:
    summary = record.summary
    return f"{record.config.get('objective')} weight training" + (f": {summary['steps']} steps" if "steps" in summary
                                                                   else "")


def _distill(record) -> str:
    config, summary = record.config, record.summary
    layers = config.get("layers") or []
    text = (f"{len(layers)}-layer student ({config.get('init', 'teacher')} init"
            + (f", layers {','.join(map(str, layers))}" if config.get("init", "teacher") == "teacher" else "") + ")")
    if "steps" in summary:
        text += (f": {summary['steps']} steps, KL {_number(summary.get('kl_before'))} → {_number(summary.get('kl_after'))}, "
                 f"{summary.get('size_ratio', 0):.0%} of the parameters")
    return text


def _sweep(record) -> str:
    config, summary = record.config, record.summary
    text = f"{config.get('kind', '?')} sweep"
    if "units" in summary:
        text += (f": {summary.get('jobs', '?')} jobs, {summary.get('done', 0)} of {summary['units']} units done"
                 + (f", {summary['failed']} failed" if summary.get("failed") else "")
                 + (f", {summary['retries']} retried" if summary.get("retries") else "")
                 + (f" ({summary['backend']})" if summary.get("backend") else ""))
    return text


DESCRIBERS = {"ig2": _ig2, "evaluate": _evaluate, "heads": _heads, "head-importance": _importance, "prune": _prune,
              "debias": _debias, "distill": _distill, "sweep": _sweep}


def describe(record, width: int = 90) -> str:
    """What a run is, in one short line: its subject and headline numbers (a failed run: its error)."""
    if record.status == "failed" and record.error:
        text = f"failed: {record.error}"
    else:
        try:
            text = DESCRIBERS[record.kind](record)
        except (KeyError, TypeError, ValueError):  # a kind without describer, or a run written by an older version
            text = ", ".join(f"{k} {_number(v)}" for k, v in record.summary.items() if isinstance(v, (int, float, str)))
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    # Cut at a word boundary, never inside a number.
    return text[: text.rfind(" ", 0, width - 1)].rstrip(",:") + " …"


def describe_run(record, width: int = 110) -> str:
    """The picker label of a run: its kind and model, then :func:`describe`."""
    return f"{record.kind} · {short_model(record.model)} · {describe(record, width)}"
