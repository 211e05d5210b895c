"""Numbers as a reader wants them: probabilities of 1e-7 are not '0.0000'."""

from __future__ import annotations


def number(value: float, digits: int = 3) -> str:
    """``digits`` significant digits; scientific notation below 0.001 (0 stays '0')."""
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{digits}g}"


def change(value: float, digits: int = 3) -> str:
    """A signed difference: "+1.23e-05", "-0.0412"; an exact zero is 'no change'."""
    if value == 0:
        return "no change"
    return ("+" if value > 0 else "-") + number(abs(value), digits)


def metric_with_change(column, label: str, after: float, before: float, *, lower_is_better: bool = False) -> None:
    """``st.metric`` of a value after an intervention, with its change from before."""
    difference = after - before
    arrow = "off" if difference == 0 else "auto"
    colour = "off" if difference == 0 else ("inverse" if lower_is_better else "normal")
    column.metric(label, number(after, 4), change(difference), delta_color=colour, delta_arrow=arrow)


def percent_kept(share: float) -> str:
    """A percentage of weights kept: one decimal, two just below 100 — never '100.0' when something is pruned."""
    return f"{share:.2f}" if 99.9 < share < 100 else f"{share:.1f}"
