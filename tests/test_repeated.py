"""Repeated CV: candidates decided on paired differences, heads and thresholds cross-fitted."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from train.heads import cross_fitted_head  # noqa: E402
from train.mias import AbnormalityRow, ImageRecord  # noqa: E402
from train.repeated_candidates import Repeat, build_candidates, describe  # noqa: E402
from train.repeated_shipped import shipped_head  # noqa: E402

CLASSES = ["CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM"]


@pytest.fixture(autouse=True)
def _few_replicates(monkeypatch):
    import train.repeated_candidates

    monkeypatch.setattr(train.repeated_candidates, "REPLICATES", 100)


def records(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for patient in range(1, n_patients + 1):
        for side in (1, 0):
            number = 2 * patient - side
            label = int(rng.random() < 0.4)
            kind = CLASSES[number % len(CLASSES)] if label else "NORM"
            tissue = "FGD"[number % 3]
            row = AbnormalityRow(f"mdb{number:03d}", tissue, kind, None, None, None, None, 1)
            out.append(ImageRecord(f"mdb{number:03d}", patient, tissue, label, (row,)))
    return out


def repeats_for(recs, strength, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array([r.label for r in recs])
    patients = np.array([r.patient_id for r in recs])
    out = []
    for repeat in range(3):
        folds = (patients * (repeat + 7)) % 5 + 1
        base = 1 / (1 + np.exp(-(strength * (labels - 0.5) + rng.normal(0, 1, len(recs)))))
        variants = {
            "plain": base,
            "breast_windows": base,
            "flip": base,
            "breast_windows_flip": base,
        }
        out.append(Repeat(f"seed_{repeat}", folds, variants))
    return out


def test_evidence_that_carries_the_label_is_kept_and_shipped():
    recs = records()
    labels = np.array([r.label for r in recs])
    reps = repeats_for(recs, strength=1.0)
    rng = np.random.default_rng(3)
    calcifications = np.column_stack(
        [labels * 2.0 + rng.normal(0, 0.5, len(recs)), rng.normal(0, 1, (len(recs), 2))]
    )
    chain = build_candidates(reps, recs, calcifications)
    names = {c.name: c for c in chain}
    # identical variants: no difference, so not kept; the informative features are
    assert not names["+ breast windows"].kept and not names["+ flip"].kept
    assert names["+ calcifications"].kept
    assert names["+ calcifications"].difference["difference"] > 0.05
    described = [describe(c, recs, reps) for c in chain]
    if names["+ other breast"].kept:
        with pytest.raises(NotImplementedError, match="calcification"):
            shipped_head(chain, described, reps, recs, calcifications)
        return
    shipped = shipped_head(chain, described, reps, recs, calcifications)
    assert shipped["head"]["single"]["features"][0] == "cnn_logit"
    points = shipped["operating_points"]["points"]
    assert set(points) == {"triage", "balanced"}
    default = shipped["operating_points"]["default"]
    assert points[default]["balanced_accuracy"] == max(
        p["balanced_accuracy"] for p in points.values()
    )


def test_noise_features_are_not_kept():
    recs = records(seed=1)
    reps = repeats_for(recs, strength=2.0, seed=1)
    noise = np.random.default_rng(5).normal(0, 1, (len(recs), 3))
    chain = build_candidates(reps, recs, noise)
    assert not {c.name: c for c in chain}["+ calcifications"].kept


def test_a_fold_head_never_sees_its_own_fold():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(100, 2))
    labels = (values[:, 0] > 0).astype(int)
    folds = np.arange(100) % 5 + 1
    stacked = cross_fitted_head(values, labels, folds)
    changed = labels.copy()
    changed[folds == 2] = 1 - changed[folds == 2]
    again = cross_fitted_head(values, changed, folds)
    assert np.allclose(stacked[folds == 2], again[folds == 2])
    assert not np.allclose(stacked[folds != 2], again[folds != 2])


def test_a_kept_other_breast_step_ships_a_pair_head():
    recs = records(seed=2)
    labels = np.array([r.label for r in recs])
    reps = repeats_for(recs, strength=1.0, seed=2)
    # The other breast's score carries the label: a strong left/right signal.
    partner = np.arange(len(recs)) ^ 1
    for repeat in reps:
        for name in repeat.variants:
            repeat.variants[name] = np.clip(
                repeat.variants[name] - 0.4 * (1 - labels) * repeat.variants[name][partner],
                0.01,
                0.99,
            )
    noise = np.random.default_rng(7).normal(0, 1, (len(recs), 3))
    chain = build_candidates(reps, recs, noise)
    names = {c.name: c for c in chain}
    if not names["+ other breast"].kept or names["+ calcifications"].kept:
        pytest.skip("the synthetic left/right signal did not decide as designed")
    described = [describe(c, recs, reps) for c in chain]
    shipped = shipped_head(chain, described, reps, recs, noise)
    assert shipped["head"]["pair"]["features"] == ["cnn_logit", "cnn_logit_minus_other"]
    assert shipped["final_candidate"] == "+ other breast"
