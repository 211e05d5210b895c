"""The unit kinds a sweep can run, by name (each a :class:`bias_lab.sweeps.units.SweepKind`)."""

from __future__ import annotations

from functools import lru_cache

from ..errors import BiasLabError

KIND_NAMES = ("neurons", "heads", "evaluate", "fasp", "distill")


@lru_cache(maxsize=None)
def sweep_kind(name: str):
    if name == "neurons":
        from .kind_neurons import NeuronsKind as kind
    elif name == "heads":
        from .kind_heads import HeadsKind as kind
    elif name == "evaluate":
        from .kind_evaluate import EvaluateKind as kind
    elif name == "fasp":
        from .kind_fasp import FaspKind as kind
    elif name == "distill":
        from .kind_distill import DistillKind as kind
    else:
        raise BiasLabError(f"unknown sweep kind {name!r}: valid kinds are {', '.join(KIND_NAMES)}")
    return kind()
