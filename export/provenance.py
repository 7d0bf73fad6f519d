"""Where a model came from: code revision, creation date, data fingerprint, and writing
the ``mammo_edge.*`` metadata into the ONNX file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import os
import subprocess
from pathlib import Path

import onnx

from mammo_edge.model.metadata import REQUIRED_KEYS, ModelMetadata

METADATA_PREFIX = "mammo_edge."
#: The packages whose versions an export report records.
VERSIONED_PACKAGES = ("tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


def code_revision(repository: Path) -> str:
    """``git rev-parse HEAD`` of ``repository``, with ``-dirty`` if tracked files changed;
    "unknown" outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if changed else head


def created_utc() -> str:
    """Creation time as an ISO-8601 UTC string.

    Honours ``SOURCE_DATE_EPOCH`` (reproducible-builds.org) so that a rerun can be made
    byte-identical: the date is the only field that otherwise changes on every export.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
        if epoch
        else dt.datetime.now(tz=dt.timezone.utc)
    )
    return moment.replace(microsecond=0).isoformat()


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def attach_metadata(model: onnx.ModelProto, metadata: ModelMetadata) -> None:
    """Replace the model's ``mammo_edge.*`` metadata_props with ``metadata`` (in place)."""
    kept = {
        prop.key: prop.value
        for prop in model.metadata_props
        if not prop.key.startswith(METADATA_PREFIX)
    }
    onnx.helper.set_model_props(model, {**kept, **metadata.to_props()})


def read_metadata_props(model: onnx.ModelProto) -> dict[str, str]:
    """The model's metadata_props as a plain dict."""
    return {prop.key: prop.value for prop in model.metadata_props}


def missing_metadata(props: dict[str, str]) -> list[str]:
    """Required keys absent or empty in ``props`` (empty strings count as missing)."""
    return [key for key in REQUIRED_KEYS if not props.get(key)]


def package_versions() -> dict[str, str]:
    """The installed version of each of :data:`VERSIONED_PACKAGES` (or "not installed")."""
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
