"""The dashboard's page list: one row per page, in the order of the workflow. ``app.py`` builds the
sidebar navigation from it; a page whose script is not there (yet) is left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageEntry:
    script: str  # relative to the repository root, where app.py is
    title: str  # what the sidebar shows
    icon: str
    url_path: str  # "" for the home page; the others keep the addresses of the earlier pages/ folder (/Bias_neurons …)


PAGES: tuple[PageEntry, ...] = (
    PageEntry("views/home.py", "Home", ":material/home:", ""),
    PageEntry("views/0_Lesson.py", "Lesson", ":material/school:", "Lesson"),
    PageEntry("views/1_Bias_neurons.py", "Bias neurons", ":material/neurology:", "Bias_neurons"),
    PageEntry("views/2_Neuron_lab.py", "Neuron lab", ":material/tune:", "Neuron_lab"),
    PageEntry("views/3_Heads.py", "Heads", ":material/grid_view:", "Heads"),
    PageEntry("views/4_Pruning_masks.py", "Pruning masks", ":material/content_cut:", "Pruning_masks"),
    PageEntry("views/5_Evaluate.py", "Evaluate", ":material/fact_check:", "Evaluate"),
    PageEntry("views/6_Compare.py", "Compare", ":material/compare_arrows:", "Compare"),
    PageEntry("views/7_Trade_off.py", "Trade-off", ":material/scatter_plot:", "Trade_off"),
    PageEntry("views/9_Compression.py", "Compression", ":material/compress:", "Compression"),
    PageEntry("views/8_Runs.py", "Runs", ":material/history:", "Runs"),
)


def present_pages() -> list[PageEntry]:
    """The pages whose scripts exist, in order."""
    return [entry for entry in PAGES if (ROOT / entry.script).is_file()]


def has_page(title: str) -> bool:
    return any(entry.title == title for entry in present_pages())
