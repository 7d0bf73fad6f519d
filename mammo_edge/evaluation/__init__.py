"""Evaluation: labels and datasets, metrics, and the evaluation a run writes.

:mod:`.labels` is the one reader of truth (``evaluate --labels`` files, mini-MIAS
``Info.txt`` through :mod:`.mias_info`, and the dataset manifest through
:mod:`.dataset_manifest` and :mod:`.manifest_rows`), used by ``train``, ``evaluate`` and
``calibrate`` alike; :mod:`.metrics` and :mod:`.repeated_metrics` are the one metrics family
(AUC with patient-bootstrap CIs, operating points, cross-fitting); :mod:`.results` writes
an evaluation (metrics.json, predictions.csv), :mod:`.summary` its text and
:mod:`.plots` its ROC.
"""

from ..lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "Dataset": "dataset_manifest",
        "read_dataset": "dataset_manifest",
        "read_labels": "labels",
        "auc_with_ci": "metrics",
    },
)
