"""Content that is not code — lesson texts, classroom prompt sets, word lists, example
intervention specs and sweep files, the app's logo and theme — lives in the top-level ``assets/``
folder and is read only through this accessor. ``pip install .`` carries it as the package
``bias_lab.content``; in a source checkout (an editable install included) the folder is read where
it is."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BiasLabError

_CHECKOUT = Path(__file__).resolve().parents[1] / "assets"


def assets_root() -> Path:
    """The folder holding the assets (the checkout's ``assets/`` or the installed copy)."""
    if _CHECKOUT.is_dir():
        return _CHECKOUT
    return Path(str(resources.files("bias_lab.content")))


def asset_path(*parts: str) -> Path:
    """The path of one asset, e.g. ``asset_path("lessons", "01_ask.md")``; a missing asset is a
    one-line error naming it."""
    path = assets_root().joinpath(*parts)
    if not path.exists():
        raise BiasLabError(f"asset {'/'.join(parts)!r} is missing from {assets_root()}: reinstall bias-lab")
    return path


def read_asset_text(*parts: str) -> str:
    return asset_path(*parts).read_text(encoding="utf-8")


def read_asset_json(*parts: str) -> Any:
    return json.loads(read_asset_text(*parts))


def list_assets(*parts: str, pattern: str = "*") -> list[Path]:
    """The files of an asset folder, sorted by name."""
    folder = asset_path(*parts)
    return sorted(path for path in folder.glob(pattern) if path.is_file())


ASSET_PREFIX = "asset:"


def _resolved(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(ASSET_PREFIX):
        return str(asset_path(*value[len(ASSET_PREFIX):].split("/")))
    if isinstance(value, dict):
        return {key: _resolved(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    return value


def page_defaults(page: str) -> dict[str, Any]:
    """What a dashboard page's boxes hold before anyone types (``assets/app/defaults.json``): prompts,
    demographic pairs, data sources. Values written ``asset:FOLDER/FILE`` come back as that asset's
    path; an unknown page is a one-line error naming the known ones."""
    defaults = read_asset_json("app", "defaults.json")
    if page not in defaults or page.startswith("_"):
        known = ", ".join(name for name in defaults if not name.startswith("_"))
        raise BiasLabError(f"no page defaults for {page!r} in assets/app/defaults.json: known are {known}")
    return _resolved(defaults[page])
