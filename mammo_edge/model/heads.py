"""The stacking head: the network's probability combined with full-resolution evidence.

Some models ship a small logistic head in their metadata (key ``mammo_edge.head``,
written by ``python -m export --head``, fitted by ``python -m train repeated`` inside the
training folds). The image's probability is then::

    sigmoid(intercept + sum_k coefficient_k * (feature_k - mean_k) / scale_k)

over named features: ``cnn_logit`` (the logit of the network's own probability) and the
cluster features of :mod:`mammo_edge.images.calcifications`. The network's own probability stays
in the record as ``network_probability`` so the two can be compared.

Metadata form::

    {"single": {"features": [...], "mean": [...], "scale": [...],
                "coefficients": [...], "intercept": 0.1}}
    {"pair": {"features": ["cnn_logit", "cnn_logit_minus_other"], ...},
     "single": {"features": ["cnn_logit"], ...}}

A ``pair`` head also reads the difference of the image's network logit to the other
breast's: :mod:`mammo_edge.exams` applies it once the exam's images are in. A model
with a pair head also carries a ``single`` head on ``cnn_logit`` alone, fitted on images
scored alone (``python -m train single-view``), with its own operating points; an older
model without one scores an image alone with the pair head and a zero difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mammo_edge.images.calcifications import FEATURE_NAMES

#: Features a head may use: the network's logit, the full-resolution evidence, and the
#: difference of the logit to the other breast's (:mod:`mammo_edge.exams`; 0 alone).
PAIR_FEATURE = "cnn_logit_minus_other"
KNOWN_FEATURES = ("cnn_logit", *FEATURE_NAMES, PAIR_FEATURE)


class HeadError(ValueError):
    """The head in a model's metadata is malformed."""


@dataclass(frozen=True)
class Head:
    """A logistic head on standardised, named features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float

    @classmethod
    def from_dict(cls, values: Mapping) -> Head:
        """Parse and check one head of the metadata (raises :class:`HeadError`)."""
        try:
            head = cls(
                tuple(str(name) for name in values["features"]),
                tuple(float(v) for v in values["mean"]),
                tuple(float(v) for v in values["scale"]),
                tuple(float(v) for v in values["coefficients"]),
                float(values["intercept"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise HeadError(f"malformed stacking head ({error!r})") from None
        sizes = {len(head.features), len(head.mean), len(head.scale), len(head.coefficients)}
        if len(sizes) != 1:
            raise HeadError("the head's features, mean, scale and coefficients differ in length")
        unknown = sorted(set(head.features) - set(KNOWN_FEATURES))
        if unknown:
            raise HeadError(f"the head uses features this runtime cannot compute: {unknown}")
        if any(scale <= 0 for scale in head.scale):
            raise HeadError("the head's scales must be positive")
        return head

    def as_dict(self) -> dict:
        """The metadata form (:meth:`from_dict` reads it back)."""
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
        }

    @property
    def reads_other_breast(self) -> bool:
        return PAIR_FEATURE in self.features

    @property
    def needs_calcifications(self) -> bool:
        return any(name in FEATURE_NAMES for name in self.features)

    def probability(self, values: Mapping[str, float]) -> float:
        """The head's probability for one image's named feature values."""
        total = self.intercept
        for name, mean, scale, weight in zip(
            self.features, self.mean, self.scale, self.coefficients, strict=True
        ):
            total += weight * (values[name] - mean) / scale
        return 1.0 / (1.0 + math.exp(-total))


def single_head(metadata_head: Mapping) -> Head | None:
    """The head that scores one image alone, or ``None``.

    The metadata's ``single`` head when there is one; else, for an older model with only a
    ``pair`` head, that head with a zero difference (how it was first shipped). With a
    ``pair`` head beside it, the ``single`` head may read the network logit only:
    :mod:`mammo_edge.exams` recomputes an image's alone probability from its record.
    """
    if not metadata_head:
        return None
    pair = pair_head(metadata_head)
    values = metadata_head.get("single")
    if not values:
        return pair
    head = Head.from_dict(values)
    if pair is not None and head.features != ("cnn_logit",):
        raise HeadError("beside a pair head, the single-view head may read cnn_logit only")
    return head


def pair_head(metadata_head: Mapping) -> Head | None:
    """The metadata's ``pair`` head (reading the other breast), or ``None``."""
    values = (metadata_head or {}).get("pair")
    if not values:
        return None
    head = Head.from_dict(values)
    if head.needs_calcifications:
        # The other breast's evidence is not in its record; only its network logit is.
        raise HeadError("a pair head reading calcification features is not supported")
    if not head.reads_other_breast:
        raise HeadError(f"a pair head must read {PAIR_FEATURE}")
    return head


def logit(probability: float) -> float:
    """log(p / (1 - p)), p clipped to [1e-6, 1 - 1e-6] as the head was fitted."""
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
