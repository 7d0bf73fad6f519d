"""Find the model file to load and prove it is the one that was shipped.

The installed models live in ``mammo_edge/models/`` next to a ``manifest.json``::

    {"default": "seed",
     "models": {"seed": {"file": "seed.onnx", "sha256": "<hex>", "model_name": "...",
                         "model_version": "...", "description": "...",
                         "model_card": "MODEL_CARD.seed.md"},
                "seed-int8": {...}},
     "aliases": {"fp32": "seed", "int8": "seed-int8"}}

Several models ship side by side, each selected by its name; ``aliases`` keeps old names
working (deprecated). A model's card is the file its entry names in ``model_card``, else
``MODEL_CARD.md`` beside it.

A model is chosen, in order, by the ``model`` argument (``--model``), then the
``MAMMO_EDGE_MODEL`` environment variable, then the manifest's default. Either may be a
name from the installed manifest (``seed-int8``), a folder holding its own ``manifest.json``,
or a path to an ``.onnx`` file. A file listed in a manifest beside it is checked against
that SHA-256 and refused when it differs; any other file is loaded and its SHA-256 is
reported as unverified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.errors import ModelError

#: Where ``pip install`` puts the shipped models.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MANIFEST_NAME = "manifest.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
#: Environment variable naming a model path, folder or installed name.
MODEL_ENV_VAR = "MAMMO_EDGE_MODEL"

logger = logging.getLogger("mammo_edge")


@dataclass(frozen=True)
class ModelFile:
    """A model chosen but not yet loaded.

    Attributes:
        path: the ``.onnx`` file.
        name: the manifest key (``seed``) or, for a bare file, its stem.
        expected_sha256: the manifest's checksum, or ``None`` for a file no manifest lists.
        description: the manifest's description, if any.
        model_card: the card the manifest entry names (``model_card``), else
            ``MODEL_CARD.md`` beside the file, if present.
    """

    path: Path
    name: str
    expected_sha256: str | None
    description: str = ""
    model_card: Path | None = None


def read_manifest(directory: Path) -> dict:
    """Load and check ``directory/manifest.json``; raises ModelError naming the problem."""
    manifest_path = directory / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelError(
            f"No model manifest at {manifest_path}. This install has no shipped model: "
            f"pass --model PATH or set {MODEL_ENV_VAR}."
        ) from error
    except (OSError, ValueError) as error:
        raise ModelError(
            f"The model manifest {manifest_path} is unreadable ({error}); reinstall mammo-edge."
        ) from error
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, dict) or not models:
        raise ModelError(f"The model manifest {manifest_path} lists no models; reinstall it.")
    for name, entry in models.items():
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
            raise ModelError(
                f"The model manifest {manifest_path} entry {name!r} lacks 'file' or 'sha256'."
            )
    aliases = manifest.get("aliases", {})
    if not isinstance(aliases, dict) or any(target not in models for target in aliases.values()):
        raise ModelError(
            f"The model manifest {manifest_path} has aliases naming models it does not list."
        )
    default = manifest.get("default")
    if default not in models:
        raise ModelError(
            f"The model manifest {manifest_path} names default {default!r}, "
            f"which is not among its models ({', '.join(models)})."
        )
    return manifest


def installed_model_names(directory: Path = MODELS_DIR) -> list[str]:
    """Names of the models in the installed manifest (empty when none is shipped)."""
    try:
        return list(read_manifest(directory)["models"])
    except ModelError:
        return []


def shipped_models(directory: Path = MODELS_DIR) -> list[ModelFile]:
    """Every model the manifest in ``directory`` lists, default first, then by name."""
    manifest = read_manifest(directory)
    default = manifest["default"]
    names = sorted(manifest["models"], key=lambda name: (name != default, name))
    return [_from_manifest(directory, name) for name in names]


def default_model_name(directory: Path = MODELS_DIR) -> str:
    """The manifest's default model name."""
    return read_manifest(directory)["default"]


def add_to_manifest(
    directory: Path,
    entries: dict[str, dict],
    make_default: bool = False,
    remove: tuple[str, ...] = (),
) -> Path:
    """Add or replace ``entries`` in ``directory/manifest.json``, keeping the other models.

    Args:
        directory: the models folder (the manifest is created when absent).
        entries: name -> entry (``file``, ``sha256`` and descriptive fields).
        make_default: make the first of ``entries`` the default; without a previous
            manifest it becomes the default anyway.
        remove: names to drop (e.g. an INT8 twin that no longer passes its check).

    Returns:
        The manifest's path. Written atomically, so a reader never sees half a manifest.
    """
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if path.is_file():
        manifest = read_manifest(directory)
    else:
        manifest = {"default": None, "models": {}}
    models = {name: entry for name, entry in manifest["models"].items() if name not in remove}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
            raise ModelError(f"manifest entry {name!r} needs 'file' and 'sha256'")
        models[name] = entry
    default = manifest["default"]
    if make_default or default not in models:
        default = next(iter(entries)) if entries else next(iter(sorted(models)), None)
    if default is None:
        raise ModelError(f"{path}: a manifest needs at least one model")
    aliases = {
        alias: target
        for alias, target in manifest.get("aliases", {}).items()
        if target in models and alias not in models
    }
    updated = {"default": default, "models": dict(sorted(models.items()))}
    if aliases:
        updated["aliases"] = dict(sorted(aliases.items()))
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, prefix=".manifest-", suffix=".json", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(json.dumps(updated, indent=2, ensure_ascii=False) + "\n")
    os.chmod(handle.name, 0o644)  # NamedTemporaryFile makes 0600; others must read it
    os.replace(handle.name, path)
    return path


def resolve_model(model: str | os.PathLike | None = None) -> ModelFile:
    """Choose the model file from an argument, the environment or the shipped default.

    Raises:
        ModelError: when nothing matches, saying what was tried and what exists.
    """
    from_environment = False
    if model is None or str(model) == "":
        model = os.environ.get(MODEL_ENV_VAR) or None
        from_environment = model is not None
    if model is None:
        return _from_manifest(MODELS_DIR, None)
    path = Path(model).expanduser()
    if path.is_dir():
        return _from_manifest(path, None)
    if path.is_file():
        return _from_file(path)
    names = installed_model_names()
    if str(model) in names:
        return _from_manifest(MODELS_DIR, str(model))
    aliases = _installed_aliases()
    if str(model) in aliases:
        logger.warning(
            "model name %r is deprecated and will be removed; use %r (the same model)",
            str(model),
            aliases[str(model)],
        )
        return _from_manifest(MODELS_DIR, aliases[str(model)])
    known = f"installed models: {', '.join(names)}" if names else "no model is installed"
    where = (
        f" (from the environment variable {MODEL_ENV_VAR}; unset it or correct it)"
        if from_environment
        else ""
    )
    raise ModelError(
        f"Model {str(model)!r}{where} not found: it is not a file or folder ({known})."
    )


def manifest_model(directory: Path, name: str | None = None) -> ModelFile:
    """Model ``name`` (or one of its aliases; the default when None) of ``directory``'s manifest.

    Raises:
        ModelError: no manifest, or no model of that name.
    """
    manifest = read_manifest(Path(directory))
    if name is not None and name not in manifest["models"]:
        target = manifest.get("aliases", {}).get(name)
        if target is None:
            raise ModelError(
                f"{Path(directory) / MANIFEST_NAME}: no model named {name!r}; "
                f"available: {', '.join(sorted(manifest['models']))}"
            )
        name = target
    return _from_manifest(Path(directory), name)


def _installed_aliases() -> dict[str, str]:
    try:
        return dict(read_manifest(MODELS_DIR).get("aliases", {}))
    except ModelError:
        return {}


def _from_manifest(directory: Path, name: str | None) -> ModelFile:
    manifest = read_manifest(directory)
    name = name or manifest["default"]
    entry = manifest["models"][name]
    path = directory / entry["file"]
    card = directory / str(entry.get("model_card") or MODEL_CARD_NAME)
    return ModelFile(
        path=path,
        name=name,
        expected_sha256=str(entry["sha256"]).lower(),
        description=str(entry.get("description", "")),
        model_card=card if card.is_file() else None,
    )


def _from_file(path: Path) -> ModelFile:
    directory = path.resolve().parent
    card = directory / MODEL_CARD_NAME
    if (directory / MANIFEST_NAME).is_file():
        manifest = read_manifest(directory)
        for name, entry in manifest["models"].items():
            if (directory / entry["file"]).resolve() == path.resolve():
                return _from_manifest(directory, name)
    return ModelFile(
        path=path,
        name=path.stem,
        expected_sha256=None,
        model_card=card if card.is_file() else None,
    )


def read_verified(model_file: ModelFile) -> tuple[bytes, str]:
    """Read the model bytes and check them against the manifest's SHA-256.

    The bytes returned are the ones hashed, and the session is built from them, so the
    file cannot change between check and use.

    Returns:
        ``(model_bytes, sha256_hex)``.

    Raises:
        ModelError: when the file is missing or its checksum differs from the manifest.
    """
    try:
        model_bytes = model_file.path.read_bytes()
    except FileNotFoundError as error:
        raise ModelError(
            f"Model file {model_file.path} is missing; reinstall mammo-edge or pass --model PATH."
        ) from error
    except OSError as error:
        raise ModelError(f"Cannot read model file {model_file.path}: {error}") from error
    digest = hashlib.sha256(model_bytes).hexdigest()
    if model_file.expected_sha256 is not None and digest != model_file.expected_sha256:
        raise ModelError(
            f"Model file {model_file.path} failed its integrity check: SHA-256 {digest} "
            f"differs from the manifest's {model_file.expected_sha256}. The file is altered "
            "or corrupt; reinstall mammo-edge (pip install --force-reinstall mammo-edge)."
        )
    return model_bytes, digest
