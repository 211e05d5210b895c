"""Content lives in assets/ and is read through one accessor; the package list installs all of it."""

import tomllib
from pathlib import Path

import pytest

from bias_lab.assets import asset_path, assets_root, list_assets, read_asset_json
from bias_lab.errors import BiasLabError

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_covers_every_subpackage_and_the_assets():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "bias_lab").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"bias_lab.content"}
    assert config["package-dir"]["bias_lab.content"] == "assets"


def test_the_accessor_reads_the_assets_folder():
    assert assets_root() == ROOT / "assets"
    modifiers = read_asset_json("words", "modifiers.json")
    assert isinstance(modifiers["negative"], list) and isinstance(modifiers["positive"], list)
    assert asset_path("words", "gender_words.json").is_file()
    assert [p.name for p in list_assets("words", pattern="*.json")] == ["gender_words.json", "modifiers.json"]
    with pytest.raises(BiasLabError, match="asset 'words/nope.json' is missing"):
        asset_path("words", "nope.json")
