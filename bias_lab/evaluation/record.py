"""Evaluations as stored runs: what the Trade-off page plots (performance vs bias, by method)."""

from __future__ import annotations

from ..interventions import InterventionSpec
from ..provenance import provenance
from ..store import RunStore
from .results import EvalResult

BIAS_OF = {
    "stereoset": lambda s: abs(s["intrasentence"]["overall"]["ss"] - 50),
    "crows": lambda s: abs(s["overall"]["metric"] - 50),
    "seat": lambda s: s["mean_abs_effect_size"],
    "winobias": lambda s: abs(s["overall"]["preference"] - 50),
}


# What the Trade-off axes show, in the metric's own words.
BIAS_NAME = {"stereoset": "|SS − 50|", "crows": "|metric − 50|", "seat": "mean |effect size|",
             "winobias": "|preference − 50|"}
PERFORMANCE_NAME = {"stereoset": "100 − LMS", "perplexity": "perplexity"}


def method_of(spec: InterventionSpec | None) -> str:
    """original, BNS (neurons), head pruning, mask — or a combination."""
    if spec is None or spec.is_empty:
        return "original"
    parts = [name for name, present in (("BNS", spec.neurons), ("head pruning", spec.heads), ("mask", spec.mask))
             if present]
    return " + ".join(parts)


def headline(benchmark: str, summary: dict) -> dict:
    """The numbers a run list shows: bias (0 = unbiased) and, where there is one, performance."""
    flat = {}
    if benchmark in BIAS_OF:
        flat["bias"] = BIAS_OF[benchmark](summary)
    if benchmark == "stereoset":
        overall = summary["intrasentence"]["overall"]
        flat.update(ss=overall["ss"], lms=overall["lms"], icat=overall["icat"], performance=100 - overall["lms"])
    elif benchmark == "perplexity":
        flat["performance"] = summary["perplexity"]
    elif benchmark == "crows":
        flat["metric"] = summary["overall"]["metric"]
    elif benchmark == "winobias":
        flat["preference"] = summary["overall"]["preference"]
    elif benchmark == "seat":
        flat["mean_abs_effect_size"] = summary["mean_abs_effect_size"]
    return flat


def data_label(data: str | None, limit: int | None, items: int | None) -> str:
    """What a point was computed on, e.g. 'dev.json, first 200' — points with different labels are
    not comparable."""
    name = str(data) if data else "default data"
    return f"{name}, first {limit}" if limit else f"{name}, all {items}" if items is not None else name


def evaluation_config(result: EvalResult, spec: InterventionSpec | None, *, data: str | None,
                      limit: int | None) -> dict:
    """A stored evaluation's config — the same keys from the app and the CLI, so the Trade-off page
    reads both alike. The intervention is stored as applied (a re-targeted spec as such)."""
    applied = result.config.get("intervention")
    if applied is not None:
        spec = InterventionSpec.from_dict(applied)
    items = result.config.get("items")
    return {"benchmark": result.benchmark, "data": data, "limit": limit, "items": items,
            "data_label": data_label(data, limit, items), "notes": result.config.get("notes", []),
            "intervention": spec.to_dict() if spec else None, "method": method_of(spec)}


def record_evaluation(result: EvalResult, loaded, spec: InterventionSpec | None, *, data: str | None = None,
                      limit: int | None = None, store: RunStore | None = None) -> str:
    """Store an evaluation as a complete run (summary, items) and return its id; the data, the
    item limit and the number of items scored are part of its config."""
    store = store or RunStore()
    config = evaluation_config(result, spec, data=data, limit=limit)
    run = store.start("evaluate", config, model=loaded.source, provenance=provenance(str(loaded.device)))
    with run:
        run.write_json("summary.json", result.summary)
        run.write_parquet("items.parquet", result.items)
        run.complete({"method": config["method"], "items": config["items"],
                      **headline(result.benchmark, result.summary)})
    return run.id


_OWN_NUMBERS = {"stereoset": ("ss", "lms", "icat"), "crows": ("metric",), "winobias": ("preference",)}


def headline_text(benchmark: str, values: dict) -> str:
    """e.g. 'ss 52.1  lms 52.9  icat 49.8  bias |SS − 50| 2.1' or 'perplexity 123.4' from
    ``record.headline`` (or a stored run's summary, which holds the same keys)."""
    if benchmark == "perplexity":
        parts = [("perplexity", values.get("performance"))]
    elif benchmark == "seat":
        parts = [("mean |effect size|", values.get("mean_abs_effect_size"))]
    else:
        parts = [(name, values.get(name)) for name in _OWN_NUMBERS[benchmark]]
        parts.append((f"bias {BIAS_NAME[benchmark]}", values.get("bias")))
    digits = 3 if benchmark == "seat" else 1
    return "  ".join(f"{name} {value:.{digits}f}" for name, value in parts if isinstance(value, (int, float)))
