"""ROC and training-curve figures (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mammo_edge.evaluation.metrics import roc_curve  # noqa: E402


def plot_roc(curves: list[dict], path: Path, title: str) -> None:
    """One ROC line per entry of ``curves``: dicts with labels, probabilities, name, auc, ci."""
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for curve in curves:
        if len(set(np.asarray(curve["labels"]).tolist())) < 2:
            continue
        roc = roc_curve(curve["labels"], curve["probabilities"])
        false_positive_rate, true_positive_rate = roc.false_positive_rate, roc.true_positive_rate
        low, high = curve["ci"]
        axes.plot(
            false_positive_rate,
            true_positive_rate,
            label=f"{curve['name']}: AUC {curve['auc']:.3f} (95% CI {low:.3f}-{high:.3f})",
        )
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_training_curves(histories: list[dict], path: Path, title: str) -> None:
    """Loss and validation loss per epoch, one pair of lines per run (fold)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for index, history in enumerate(histories, start=1):
        name = history.get("name", f"run {index}")
        epochs = np.arange(1, len(history["loss"]) + 1)
        color = f"C{(index - 1) % 10}"  # a run's train and val lines share a colour
        axes[0].plot(epochs, history["loss"], color=color, label=f"{name} train")
        if "val_loss" in history:
            axes[0].plot(
                epochs, history["val_loss"], color=color, linestyle="--", label=f"{name} val"
            )
        if "accuracy" in history:
            axes[1].plot(epochs, history["accuracy"], color=color, label=f"{name} train")
        if "val_accuracy" in history:
            axes[1].plot(
                epochs, history["val_accuracy"], color=color, linestyle="--", label=f"{name} val"
            )
    axes[0].set_title("binary cross-entropy")
    axes[1].set_title("accuracy")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.legend(fontsize=6)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
