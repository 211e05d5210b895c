"""Reading what an app page shows (streamlit.testing.v1.AppTest), never its session state."""

from __future__ import annotations

import re

import pandas as pd


def _in_order(node):
    """The nodes of an element tree in page order."""
    yield node
    for index in sorted(getattr(node, "children", {}) or {}):
        yield from _in_order(node.children[index])


def _table(app, key: str):
    """The table ``ui.downloads.table(..., key)`` drew: the dataframe just before its CSV button
    (``<key>_csv``); None when the page does not show it."""
    nodes = list(_in_order(app.main))
    buttons = [i for i, node in enumerate(nodes) if node.type == "download_button" and node.key == f"{key}_csv"]
    assert len(buttons) <= 1, f"{len(buttons)} tables {key!r} on the page"
    if not buttons:
        return None
    return next(node for node in reversed(nodes[:buttons[0]]) if node.type == "dataframe")


def shown_table(app, key: str) -> pd.DataFrame:
    """The full table shown by ``ui.downloads.table(..., key)`` (what its CSV download holds)."""
    found = _table(app, key)
    assert found is not None, f"no table {key!r} on the page"
    return found.value


def has_table(app, key: str) -> bool:
    return _table(app, key) is not None


def shown_text(app) -> str:
    """Everything the page shows as text (markdown, captions, alerts, metrics, widget labels)."""
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success") for e in getattr(app, kind)]
    parts += [f"{m.label} {m.value}" for m in app.metric]
    parts += [o for s in app.selectbox for o in s.options]
    return "\n".join(map(str, parts))


def fasp_counts(app) -> dict[str, int]:
    """The 'pruned N, protected N, kept N' line of the Heads page."""
    line = next(m.value for m in app.markdown if re.fullmatch(r"pruned \d+, protected \d+, kept \d+", m.value))
    return {name: int(count) for count, name in
            ((c, n) for n, c in re.findall(r"(pruned|protected|kept) (\d+)", line))}


def density_expanders(app) -> list[str]:
    """Labels of the Pruning masks page's per-mask density expanders (one per mask shown)."""
    return [e.label for e in app.expander if e.label.endswith("% of prunable weights kept")]
