"""Model metadata: what an exported ONNX file says about itself.

The export step writes these fields into the model's ``metadata_props`` (all values are
strings; structured ones are JSON). The runtime reads them instead of hard-coding
preprocessing, class names or the decision threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from mammo_edge.images.preprocess import PreprocessConfig

#: metadata_props keys every mammo-edge model must carry.
REQUIRED_KEYS = (
    "mammo_edge.format_version",
    "mammo_edge.model_name",
    "mammo_edge.model_version",
    "mammo_edge.input_size",
    "mammo_edge.layout",
    "mammo_edge.interpolation",
    "mammo_edge.pixel_scale",
    "mammo_edge.pixel_offset",
    "mammo_edge.class_names",
    "mammo_edge.threshold",
    "mammo_edge.threshold_method",
    "mammo_edge.training_protocol",
    "mammo_edge.cv_metrics",
    "mammo_edge.dataset_sha256",
    "mammo_edge.code_revision",
    "mammo_edge.created",
)

#: Optional keys: the whole preprocessing contract as JSON (written by every export since the
#: breast-aware recipe; when absent, the legacy per-field keys above describe it), the
#: training architecture, and the model's named outputs (e.g. a patch heatmap).
OPTIONAL_KEYS = (
    "mammo_edge.preprocess",
    "mammo_edge.arch",
    "mammo_edge.outputs",
    "mammo_edge.operating_points",
    "mammo_edge.head",
)

FORMAT_VERSION = "1"


class MetadataError(ValueError):
    """The model's metadata is missing a field or holds a value of the wrong kind."""


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to use a model correctly, as stored in its ONNX metadata."""

    model_name: str
    model_version: str
    preprocess: PreprocessConfig
    class_names: tuple[str, str] = ("normal", "abnormal")
    threshold: float = 0.5
    threshold_method: str = "fixed 0.5"
    training_protocol: str = "unknown"
    cv_metrics: dict = field(default_factory=dict)
    dataset_sha256: str = ""
    code_revision: str = ""
    created: str = ""
    format_version: str = FORMAT_VERSION
    arch: str = ""
    #: Output names by role: ``{"probability": "probability", "heatmap": "heatmap"}``.
    outputs: dict = field(default_factory=dict)
    #: Named thresholds, e.g. ``{"default": "balanced", "points": {"triage": {"threshold":
    #: 0.21, "rule": ..., "sensitivity": ..., "specificity": ..., "source": ...}, ...}}``;
    #: ``threshold`` above is the default point's. Empty for models with one threshold.
    operating_points: dict = field(default_factory=dict)
    #: A stacking head applied after the network (:mod:`mammo_edge.model.heads`); empty when
    #: the network's probability is the answer.
    head: dict = field(default_factory=dict)

    def operating_point(self, name: str | None, single_view: bool = False) -> tuple[float, str]:
        """``(threshold, name)`` of a named operating point (``None``: the default).

        Args:
            name: ``triage``, ``balanced``...; ``None`` for the model's default.
            single_view: the point for an image scored alone: from the ``single_view``
                block when the model has one (a pair-head model), else the same point.

        Raises:
            MetadataError: the model has no point of that name.
        """
        block = self.operating_points
        if single_view and block.get("single_view"):
            block = block["single_view"]
        points = block.get("points", {})
        if name is None:
            name = block.get("default")
            if name is None:
                return self.threshold, "default"
        if name not in points:
            known = ", ".join(sorted(points)) or "none (this model has one threshold)"
            raise MetadataError(
                f"model {self.model_name} has no operating point {name!r}; it has: {known}"
            )
        return float(points[name]["threshold"]), name

    def to_props(self) -> dict[str, str]:
        """Flatten to the string map stored in ONNX ``metadata_props``."""
        return {
            "mammo_edge.format_version": self.format_version,
            "mammo_edge.model_name": self.model_name,
            "mammo_edge.model_version": self.model_version,
            "mammo_edge.input_size": str(self.preprocess.input_size),
            "mammo_edge.layout": self.preprocess.layout,
            "mammo_edge.interpolation": self.preprocess.interpolation,
            "mammo_edge.pixel_scale": repr(float(self.preprocess.pixel_scale)),
            "mammo_edge.pixel_offset": repr(float(self.preprocess.pixel_offset)),
            "mammo_edge.class_names": json.dumps(list(self.class_names)),
            "mammo_edge.threshold": repr(float(self.threshold)),
            "mammo_edge.threshold_method": self.threshold_method,
            "mammo_edge.training_protocol": self.training_protocol,
            "mammo_edge.cv_metrics": json.dumps(self.cv_metrics, sort_keys=True),
            "mammo_edge.dataset_sha256": self.dataset_sha256,
            "mammo_edge.code_revision": self.code_revision,
            "mammo_edge.created": self.created,
            "mammo_edge.preprocess": json.dumps(self.preprocess.as_dict(), sort_keys=True),
            "mammo_edge.arch": self.arch,
            "mammo_edge.outputs": json.dumps(self.outputs, sort_keys=True),
            **(
                {"mammo_edge.operating_points": json.dumps(self.operating_points, sort_keys=True)}
                if self.operating_points
                else {}
            ),
            **({"mammo_edge.head": json.dumps(self.head, sort_keys=True)} if self.head else {}),
        }

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        """Parse the ONNX metadata map; raises MetadataError naming what is wrong."""
        missing = [key for key in REQUIRED_KEYS if key not in props]
        if missing:
            raise MetadataError(
                f"{source} is not a mammo-edge model: metadata lacks {', '.join(missing)}. "
                "Export it with `python -m export`."
            )
        try:
            if "mammo_edge.preprocess" in props:
                preprocess = PreprocessConfig.from_dict(json.loads(props["mammo_edge.preprocess"]))
            else:
                preprocess = PreprocessConfig(
                    input_size=int(props["mammo_edge.input_size"]),
                    interpolation=props["mammo_edge.interpolation"],
                    pixel_scale=float(props["mammo_edge.pixel_scale"]),
                    pixel_offset=float(props["mammo_edge.pixel_offset"]),
                    layout=props["mammo_edge.layout"],
                )
            outputs = json.loads(props.get("mammo_edge.outputs") or "{}")
            class_names = tuple(json.loads(props["mammo_edge.class_names"]))
            threshold = float(props["mammo_edge.threshold"])
            cv_metrics = json.loads(props["mammo_edge.cv_metrics"])
            operating_points = json.loads(props.get("mammo_edge.operating_points") or "{}")
            head = json.loads(props.get("mammo_edge.head") or "{}")
        except (ValueError, TypeError) as error:
            raise MetadataError(f"{source} has malformed metadata: {error}") from error
        if len(class_names) != 2:
            raise MetadataError(f"{source}: class_names must name 2 classes, got {class_names}")
        if not 0.0 <= threshold <= 1.0:
            raise MetadataError(f"{source}: threshold must lie in [0, 1], got {threshold}")
        return cls(
            model_name=props["mammo_edge.model_name"],
            model_version=props["mammo_edge.model_version"],
            preprocess=preprocess,
            class_names=class_names,  # type: ignore[arg-type]
            threshold=threshold,
            threshold_method=props["mammo_edge.threshold_method"],
            training_protocol=props["mammo_edge.training_protocol"],
            cv_metrics=cv_metrics,
            dataset_sha256=props["mammo_edge.dataset_sha256"],
            code_revision=props["mammo_edge.code_revision"],
            created=props["mammo_edge.created"],
            format_version=props["mammo_edge.format_version"],
            arch=props.get("mammo_edge.arch", ""),
            outputs=outputs if isinstance(outputs, dict) else {},
            operating_points=check_operating_points(operating_points, source),
            head=head if isinstance(head, dict) else {},
        )

    def as_dict(self) -> dict:
        result = {f.name: getattr(self, f.name) for f in fields(self)}
        result["preprocess"] = self.preprocess.as_dict()
        result["class_names"] = list(self.class_names)
        return result


def check_operating_points(points: object, source: str) -> dict:
    """The operating points, each threshold a number in [0, 1]; else MetadataError.

    A ``single_view`` block (a pair-head model's points for images scored alone) is
    checked the same way and must name the same points.
    """
    _check_point_block(points, source, "operating_points")
    single_view = points.get("single_view")
    if single_view:
        _check_point_block(single_view, source, "operating_points.single_view")
        if set(single_view.get("points", {})) != set(points.get("points", {})):
            raise MetadataError(
                f"{source}: the single-view operating points must be the paired ones' names"
            )
    return points


def _check_point_block(points: object, source: str, where: str) -> None:
    if not isinstance(points, dict):
        raise MetadataError(f"{source}: {where} must be a JSON object")
    for name, point in points.get("points", {}).items():
        threshold = point.get("threshold") if isinstance(point, dict) else None
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise MetadataError(f"{source}: operating point {name!r} has no threshold in [0, 1]")
    default = points.get("default")
    if default is not None and default not in points.get("points", {}):
        raise MetadataError(f"{source}: default operating point {default!r} is not defined")
