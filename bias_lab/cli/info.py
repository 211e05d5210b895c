"""``bias-lab info``: device, versions, supported families."""

from __future__ import annotations

from ..device import device_description, resolve_device
from ..families import FAMILIES
from ..provenance import package_versions
from ..store import bias_lab_home
from .common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="device, package versions and supported model families")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def collect() -> dict:
    return {
        "device": device_description(resolve_device("auto")),
        "versions": package_versions(),
        "families": [{"family": f.name, "model_types": list(f.model_types), "causal": f.causal} for f in FAMILIES],
        "home": str(bias_lab_home()),
    }


def run(args) -> int:
    facts = collect()
    if args.json:
        print_json(facts)
        return 0
    device = facts["device"]
    memory = device["total_memory_bytes"]
    print(f"device: {device['device']} ({device['name']}" + (f", {memory / 2**30:.1f} GiB" if memory else "") + ")")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items() if v))
    print(f"run store: {facts['home']}")
    print("families:")
    for family in facts["families"]:
        kind = "causal LM" if family["causal"] else "masked LM / encoder"
        print(f"  {family['family']:<11} {kind:<20} model types: {', '.join(family['model_types'])}")
    return 0
