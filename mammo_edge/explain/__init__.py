"""Explanation: where a model looked, on the image and in an offline report.

:mod:`.heatmaps` computes a heatmap per image (the model's own lesion map, or occlusion)
and its peak on the breast; :mod:`.overlays` draws it on the image; :mod:`.explainer`
scores and explains images as ``predict`` scores them; :mod:`.report_html` and
:mod:`.report_page` build ``mammo-edge report``'s one-file HTML page.
"""

from ..lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "Explainer": "explainer",
        "find_peak": "heatmaps",
    },
)
