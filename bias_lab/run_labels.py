"""One line that says what a stored run is — for run pickers in the app and `bias-lab runs list`.

A run list of bare ids and timestamps makes a reader open each run to find the one they want; the
line names what was computed (benchmark, demographic pair, metrics, block size) and its headline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _short_model(model: str | None) -> str:
    if not model:
        return "?"
    parts = Path(str(model)).parts
    return parts[-1] if len(parts) > 2 else str(model)


def ig2_facts(record) -> dict:
    """Dimension, pair, modifier type and target of an IG2 run, from its config or, for runs that
    did not record them, from its prompt table."""
    config = record.config
    facts = {"dimension": config.get("dimension"), "modifier": config.get("modifier") or config.get("modifier_type"),
             "pair": config.get("pair"), "target": config.get("target")}
    prompts = Path(record.artifact_dir) / "prompts.parquet"
    if (not facts["dimension"] or not facts["pair"]) and prompts.is_file():
        try:
            first = pd.read_parquet(prompts, columns=["d1", "d2", "dimension", "modifier_type"]).iloc[0]
        except (OSError, KeyError, IndexError, ValueError):
            return facts
        facts["pair"] = facts["pair"] or [first["d1"], first["d2"]]
        facts["dimension"] = facts["dimension"] or first["dimension"] or "custom"
        facts["modifier"] = facts["modifier"] or first["modifier_type"] or None
    return facts


def describe_run(record) -> str:
    """e.g. 'ig2 · bert-base-uncased · gender female/male · modifier N · target abs · 1700 prompts'."""
    config, summary = record.config, record.summary
    parts = [record.kind, _short_model(record.model)]
    if record.kind == "ig2":
        facts = ig2_facts(record)
        if facts["dimension"]:
            parts.append(f"{facts['dimension']} {'/'.join(facts['pair'] or [])}".strip())
        if facts["modifier"]:
            parts.append(f"modifier {facts['modifier']}")
        if facts["target"]:
            parts.append(f"target {facts['target']}")
        if config.get("steps"):
            parts.append(f"m = {config['steps']}")
        prompts = summary.get("prompts", config.get("prompts"))
        if prompts is not None:
            parts.append(f"{prompts} prompts")
    elif record.kind == "evaluate":
        parts.append(str(config.get("benchmark", "?")))
        parts.append(str(summary.get("method", config.get("method", "original"))))
        if config.get("data_label"):
            parts.append(config["data_label"])
        headline = {k: v for k, v in summary.items() if k in ("ss", "lms", "metric", "preference", "perplexity",
                                                              "mean_abs_effect_size") and isinstance(v, (int, float))}
        parts.extend(f"{k} {v:.3g}" for k, v in headline.items())
    elif record.kind in ("heads", "head-importance"):
        for key in ("perf", "bias"):
            if config.get(key):
                parts.append(f"{key} {config[key]}")
    elif record.kind == "prune":
        for key in ("block", "objective", "mode"):
            if config.get(key) is not None:
                parts.append(f"{key} {config[key]}")
    return " · ".join(parts)
