"""Turn command-line arguments into the list of files to score.

Each argument may be:

* a file: scored whatever its name (the content decides the format);
* a folder: searched recursively for image files, sorted by path. A file counts when its
  extension is an image one (``.pgm .pnm .png .jpg .jpeg .tif .tiff .bmp .dcm .dicom``,
  any case) or when it has no extension and starts like DICOM (files named by UID or
  ``IM0001``). Hidden files and folders and ``DICOMDIR`` are skipped;
* a glob pattern (``scans/**/*.png``), expanded recursively and sorted;
* a list file: ``@paths.txt``, or any file ending in ``.txt`` or ``.lst``, holding one path
  per line (blank lines and lines starting with ``#`` are ignored; relative paths are
  relative to the list file's folder). Lines are expanded by the same rules.

A path that does not exist, and a pattern that matches nothing, are kept: they become
NOT_FOUND records, so every argument the user gave is accounted for in the results.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from .imageio import EXTENSION_FORMATS

LIST_SUFFIXES = (".txt", ".lst")
_GLOB_CHARACTERS = set("*?[")
_DICOM_SNIFF_BYTES = 132


def expand_inputs(arguments: Iterable[str | os.PathLike]) -> list[str]:
    """Expand files, folders, globs and list files into an ordered list of paths.

    Args:
        arguments: what the user named, in order.

    Returns:
        Paths as strings, in argument order (folder and glob contents sorted). Missing paths
        are included unchanged so that they are reported.

    Raises:
        OSError: only when a list file exists but cannot be read.
    """
    expanded: list[str] = []
    for argument in arguments:
        expanded.extend(_expand_one(str(argument), seen_lists=set()))
    return expanded


def _expand_one(argument: str, seen_lists: set[Path]) -> list[str]:
    if argument.startswith("@"):
        return _expand_list_file(Path(argument[1:]), seen_lists)
    path = Path(argument)
    if path.is_dir():
        return find_images(path)
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            return _expand_list_file(path, seen_lists)
        return [argument]
    if _GLOB_CHARACTERS & set(argument):
        matches = sorted(glob.glob(argument, recursive=True))
        if matches:
            found: list[str] = []
            for match in matches:
                found.extend(find_images(Path(match)) if Path(match).is_dir() else [match])
            return found
    return [argument]  # reported as NOT_FOUND by the reader


def _expand_list_file(list_path: Path, seen_lists: set[Path]) -> list[str]:
    resolved = list_path.resolve()
    if resolved in seen_lists:
        return []  # a list that includes itself would never end
    seen_lists.add(resolved)
    if not list_path.is_file():
        return [str(list_path)]
    entries: list[str] = []
    for line in list_path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(line).expanduser()
        if not entry.is_absolute():
            entry = list_path.parent / entry
        entries.extend(_expand_one(str(entry), seen_lists))
    return entries


def find_images(folder: Path) -> list[str]:
    """All image files under ``folder``, recursively, sorted by path (see module notes)."""
    found: list[str] = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            path = Path(root) / name
            if _looks_like_image(path):
                found.append(str(path))
    return found


def _looks_like_image(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in EXTENSION_FORMATS:
        return True
    if suffix and not suffix[1:].isdigit():  # UID-named DICOM files end in ".123"
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(_DICOM_SNIFF_BYTES)
    except OSError:
        return True  # let the reader report why it cannot be read
    return head[128:132] == b"DICM"
