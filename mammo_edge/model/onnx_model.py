"""The model object: a verified mammo-edge ONNX file, its session and its contract.

:class:`Model` is the one place a model is opened. It resolves a name or path
(:mod:`mammo_edge.model.registry`), checks the bytes' SHA-256, creates the onnxruntime session
(:mod:`mammo_edge.model.providers`), reads the metadata contract (:mod:`mammo_edge.model.metadata`:
preprocessing, class names, operating points, stacking head) and checks the graph against
it. It then does two things: :meth:`Model.load` turns one input into model input by the
model's own preprocessing, and :meth:`Model.score` runs a batch. Thresholds, batching and
threads of a run belong to :class:`~mammo_edge.predictor.Predictor` and the engines.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from mammo_edge.errors import ModelError
from mammo_edge.images.decode import MAX_PIXELS
from mammo_edge.images.pipeline import LoadedImage, load_input
from mammo_edge.model.heads import Head, HeadError, pair_head, single_head
from mammo_edge.model.metadata import MetadataError, ModelMetadata
from mammo_edge.model.providers import create_session
from mammo_edge.model.registry import ModelFile, read_verified, resolve_model


class Model:
    """A verified mammo-edge model, ready to score.

    Args:
        model: ``None`` for ``$MAMMO_EDGE_MODEL`` or the shipped default, an installed
            model name, a folder with a ``manifest.json``, or an ``.onnx`` path.
        device: ``auto`` (CUDA when onnxruntime offers it), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; ``None`` for one per core.

    Attributes:
        file: where the model came from and the SHA-256 it must have.
        sha256: the SHA-256 of the bytes the session was built from.
        verified: ``True`` when that SHA-256 was checked against a manifest or caller.
        session: the onnxruntime ``InferenceSession``.
        provider: the execution provider that runs it (e.g. ``CPUExecutionProvider``).
        metadata: the contract the file carries (:class:`~mammo_edge.model.metadata.ModelMetadata`).
        head: the stacking head that scores an image alone, or ``None``
            (:func:`mammo_edge.model.heads.single_head`).
        pair_head: the head that weighs an image against the other breast, or ``None``.
        fixed_batch: ``True`` when the graph takes one image per call.

    Raises:
        ModelError: the model is missing, altered, not a mammo-edge model, or the device
            cannot be used (:class:`~mammo_edge.errors.ProviderError`).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.file: ModelFile = resolve_model(model)
        model_bytes, sha256 = read_verified(self.file)
        self._open(model_bytes, sha256, self.file.expected_sha256 is not None, device, threads)

    @classmethod
    def from_bytes(
        cls,
        model_bytes: bytes,
        *,
        sha256: str,
        source: str = "model",
        device: str = "auto",
        threads: int | None = None,
    ) -> Model:
        """A model from bytes already in memory (e.g. shipped to a Ray actor).

        Raises:
            ModelError: the bytes' SHA-256 differs from ``sha256``, or as the constructor.
        """
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != sha256.lower():
            raise ModelError(
                f"Model bytes from {source} failed their integrity check: SHA-256 {digest} "
                f"differs from the expected {sha256.lower()}."
            )
        model = cls.__new__(cls)
        model.file = ModelFile(path=Path(source), name=Path(source).stem, expected_sha256=digest)
        model._open(model_bytes, digest, True, device, threads)
        return model

    def _open(
        self, model_bytes: bytes, sha256: str, verified: bool, device: str, threads: int | None
    ) -> None:
        """Create the session from verified bytes and check the graph against its metadata."""
        self.sha256 = sha256
        self.verified = verified
        self.device = device
        self.threads = threads
        source = self.source
        self.session = create_session(model_bytes, device=device, threads=threads, source=source)
        self.provider: str = self.session.get_providers()[0]
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.metadata = ModelMetadata.from_props(props, source=source)
        except MetadataError as error:
            raise ModelError(str(error)) from error
        try:
            self.head: Head | None = single_head(self.metadata.head)
            self.pair_head: Head | None = pair_head(self.metadata.head)
        except HeadError as error:
            raise ModelError(f"{source}: {error}") from error
        self.input_name, self.fixed_batch = self._check_input()
        names = self.output_names
        self.probability_output = "probability" if "probability" in names else names[0]

    @property
    def source(self) -> str:
        """The model's path (or the source named for bytes), for messages."""
        return str(self.file.path)

    @property
    def name(self) -> str:
        return self.metadata.model_name

    @property
    def version(self) -> str:
        return self.metadata.model_version

    @property
    def output_names(self) -> list[str]:
        """Names of the model's outputs, in graph order."""
        return [output.name for output in self.session.get_outputs()]

    @property
    def needs_evidence(self) -> bool:
        """True when the head reads full-resolution calcification features."""
        return self.head is not None and self.head.needs_calcifications

    def _check_input(self) -> tuple[str, bool]:
        """The input's name and whether its batch is fixed at 1; refuse a broken contract."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelError(f"{self.source}: expected one image input, found {len(inputs)} inputs")
        image_input = inputs[0]
        height, width = self.metadata.preprocess.height, self.metadata.preprocess.width
        shape = list(image_input.shape)
        expected = [None, height, width, 1]
        fits = len(shape) == 4 and all(
            not isinstance(found, int) or want is None or found == want
            for found, want in zip(shape, expected, strict=True)
        )
        if not fits or image_input.type != "tensor(float)":
            raise ModelError(
                f"{self.source}: input {image_input.name!r} is {image_input.type} {shape}; "
                f"the metadata promises float [N, {height}, {width}, 1]"
            )
        if isinstance(shape[0], int) and shape[0] != 1:
            raise ModelError(f"{self.source}: fixed batch size {shape[0]}; export a dynamic batch")
        return image_input.name, isinstance(shape[0], int)

    def read_bytes(self) -> bytes:
        """The model file's bytes, checked to be the ones this model was built from.

        Raises:
            ModelError: the file is gone or changed since it was loaded.
        """
        model_bytes, digest = read_verified(self.file)
        if digest != self.sha256:
            raise ModelError(
                f"Model file {self.file.path} changed since it was loaded "
                f"(SHA-256 {digest}, loaded {self.sha256}); load it again."
            )
        return model_bytes

    def load(
        self,
        item: str | os.PathLike | np.ndarray,
        label: str,
        *,
        max_pixels: int = MAX_PIXELS,
        keep_pixels: bool = False,
    ) -> LoadedImage:
        """Decode and preprocess one input for this model (thread-safe; never raises).

        Every engine and verb loads through here, so each gets what the model needs: its
        preprocessing contract, and the full-resolution evidence its head reads.
        """
        return load_input(
            item,
            self.metadata.preprocess,
            label=label,
            max_pixels=max_pixels,
            keep_pixels=keep_pixels,
            evidence=self.needs_evidence,
        )

    def score(
        self, batch: np.ndarray, outputs: tuple[str, ...] = ()
    ) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the model on preprocessed input.

        Args:
            batch: ``(N, height, width, 1)`` float32, as :meth:`load` makes it.
            outputs: names of further outputs to return from the same run (e.g. the
                ``heatmap`` of the metadata's ``outputs``).

        Returns:
            ``(N,)`` float64 probabilities of the positive class; with ``outputs``, a
            tuple of them and each further output as float32, ``(N, ...)``.
        """
        if self.fixed_batch and len(batch) > 1:
            parts = [self.score(batch[i : i + 1], outputs) for i in range(len(batch))]
            if not outputs:
                return np.concatenate(parts)
            return tuple(np.concatenate(column) for column in zip(*parts, strict=True))
        names = [self.probability_output, *outputs]
        values = self.session.run(names, {self.input_name: batch})
        probabilities = np.asarray(values[0], dtype=np.float64).reshape(len(batch), -1)[:, -1]
        if not outputs:
            return probabilities
        return (probabilities, *(np.asarray(value, dtype=np.float32) for value in values[1:]))
