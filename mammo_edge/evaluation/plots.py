"""Pictures of an evaluation's ROC curve: ``roc.svg`` (always) and ``roc.png`` (matplotlib).

The SVG is written by hand so that a workstation install draws it without plotting
libraries; matplotlib (the ``plot`` extra) is imported only for the PNG. Both mark the
operating point at the evaluation's threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from mammo_edge.evaluation.results import Evaluation

SVG_NAME = "roc.svg"
PNG_NAME = "roc.png"


def _auc_text(evaluation: Evaluation) -> str:
    auc = evaluation.auc
    return f"AUC {auc.auc:.3f} (95% CI {auc.ci95[0]:.3f}-{auc.ci95[1]:.3f})"


def write_roc_svg(path: Path, evaluation: Evaluation) -> None:
    """A small hand-written SVG of the ROC curve; the operating point is a red dot.

    ``evaluation.roc`` must be defined (both classes present).
    """
    size, margin = 420, 60
    plot = size - 2 * margin

    def xy(false_positive_rate: float, true_positive_rate: float) -> str:
        x = margin + false_positive_rate * plot
        y = margin + (1 - true_positive_rate) * plot
        return f"{x:.1f},{y:.1f}"

    roc, counts = evaluation.roc, evaluation.counts
    points = " ".join(
        xy(fpr, tpr)
        for fpr, tpr in zip(roc.false_positive_rate, roc.true_positive_rate, strict=True)
    )
    operating_x, operating_y = xy(1 - counts.specificity, counts.sensitivity).split(",")
    title = f"{evaluation.model.name}: {_auc_text(evaluation)}, n = {evaluation.n}"
    legend = (
        f"threshold {evaluation.threshold:g}: sensitivity {counts.sensitivity:.2f}, "
        f"specificity {counts.specificity:.2f}"
    )
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 20}" \
font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{size / 2}" y="24" text-anchor="middle" font-size="12">{escape(title)}</text>
<rect x="{margin}" y="{margin}" width="{plot}" height="{plot}" fill="none" stroke="black"/>
{_svg_ticks(margin, plot)}
<line x1="{margin}" y1="{margin + plot}" x2="{margin + plot}" y2="{margin}" \
stroke="grey" stroke-dasharray="4 4"/>
<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<circle cx="{operating_x}" cy="{operating_y}" r="5" fill="#d62728"/>
<text x="{size / 2}" y="{margin + plot + 36}" text-anchor="middle">1 - specificity</text>
<text x="16" y="{margin + plot / 2}" text-anchor="middle" \
transform="rotate(-90 16 {margin + plot / 2})">sensitivity</text>
<text x="{size / 2}" y="{size + 12}" text-anchor="middle" fill="#d62728">{escape(legend)}</text>
</svg>
"""
    path.write_text(svg, encoding="utf-8")


def _svg_ticks(margin: int, plot: int) -> str:
    """Tick marks and labels 0.0 .. 1.0 on both axes."""
    ticks = []
    for step in range(6):
        value = step / 5
        x, y = margin + value * plot, margin + (1 - value) * plot
        ticks.append(
            f'<line x1="{x:.1f}" y1="{margin + plot}" x2="{x:.1f}" y2="{margin + plot + 5}" '
            f'stroke="black"/><text x="{x:.1f}" y="{margin + plot + 18}" '
            f'text-anchor="middle">{value:.1f}</text>'
            f'<line x1="{margin - 5}" y1="{y:.1f}" x2="{margin}" y2="{y:.1f}" stroke="black"/>'
            f'<text x="{margin - 8}" y="{y + 4:.1f}" text-anchor="end">{value:.1f}</text>'
        )
    return "".join(ticks)


def write_roc_png(path: Path, evaluation: Evaluation) -> bool:
    """The ROC as a PNG through matplotlib (the ``plot`` extra); False when not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    roc, counts = evaluation.roc, evaluation.counts
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot(roc.false_positive_rate, roc.true_positive_rate, label=_auc_text(evaluation))
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axes.plot(
        [1 - counts.specificity],
        [counts.sensitivity],
        "o",
        color="C3",
        label=f"threshold {evaluation.threshold:g}",
    )
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title(f"{evaluation.model.name}, n = {evaluation.n}", fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True
