"""The lesion-aware recipe's schedule, fixed before training (:class:`LesionSettings`).

Every number of the schedule is here before any test image is seen; nothing is tuned on
out-of-fold results. ``python -m train fit --protocol lesion`` maps its flags one to one
onto the fields (:mod:`train.run_protocol`), and a run's ``settings.json`` is this
dataclass written out, so a rerun with other settings is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mammo_edge.images.preprocess import PreprocessConfig

from .architectures import lite0


@dataclass
class LesionSettings:
    """The whole schedule, fixed before training (CLI flags map one to one)."""

    folds: int = 5
    seed: int = 0
    patch_epochs: int = 4
    patches_per_epoch: int = 1600
    patch_batch: int = 32
    patch_learning_rate: float = 1e-4
    image_epochs: int = 2
    image_batch: int = 8
    image_learning_rate: float = 2e-5
    pretrained: bool = True
    lesions: bool = True
    breast_crop: bool = True
    half_resolution: bool = False
    train_final_model: bool = True
    #: model-input height (width = half of it); None: the architecture's 512x256.
    image_size: int | None = None
    #: a lite0 model.keras to start from instead of ImageNet (fine-tuning), or None.
    init: str | None = None

    def preprocess(self) -> PreprocessConfig:
        """The preprocessing the schedule trains at (the ablations change it)."""
        config = lite0.default_preprocess()
        if self.image_size is not None:
            config = dataclasses.replace(
                config,
                input_size=self.image_size,
                input_height=self.image_size,
                input_width=self.image_size // 2,
            )
        if not self.breast_crop:
            config = dataclasses.replace(
                config,
                input_size=512,
                input_height=512,
                input_width=512,
                breast_crop=False,
                orientation="none",
            )
        if self.half_resolution:
            config = dataclasses.replace(
                config,
                input_size=config.input_size // 2,
                input_height=config.height // 2,
                input_width=config.width // 2,
            )
        return config

    def schedule_image_epochs(self) -> int:
        """Without lesion patches, the patch stage's compute goes to whole-image epochs."""
        return self.image_epochs if self.lesions else self.image_epochs + 5
