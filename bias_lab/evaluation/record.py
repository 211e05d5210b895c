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


def record_evaluation(result: EvalResult, loaded, spec: InterventionSpec | None, *, data: str | None = None,
                      store: RunStore | None = None) -> str:
    """Store an evaluation as a complete run (summary, items) and return its id."""
    store = store or RunStore()
    config = {"benchmark": result.benchmark, "data": data, "intervention": spec.to_dict() if spec else None,
              "method": method_of(spec)}
    run = store.start("evaluate", config, model=loaded.source, provenance=provenance(str(loaded.device)))
    with run:
        run.write_json("summary.json", result.summary)
        run.write_parquet("items.parquet", result.items)
        run.complete({"method": method_of(spec), **headline(result.benchmark, result.summary)})
    return run.id
