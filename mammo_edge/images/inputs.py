"""Turn command-line arguments into the list of files to score.

Each argument may be:

* a file: scored whatever its name (the content decides the format);
* a folder: searched recursively for image files, sorted by path. A file counts when its
  extension is an image one (``.pgm .pnm .png .jpg .jpeg .tif .tiff .bmp .dcm .dicom``,
  any case) or when it has no extension and starts like DICOM (files named by UID or
  ``IM0001``). Hidden files and folders and ``DICOMDIR`` are skipped. A folder (the one
  named, or one found inside it) that cannot be listed is kept as an input of its own, so
  it becomes an UNREADABLE record instead of vanishing;
* a glob pattern (``scans/**/*.png``), expanded recursively and sorted;
* a list file, only when the user says so: ``@paths.txt`` (the ``--from-list FILE`` option
  of the verbs), holding one path per line (blank lines and lines starting with ``#`` are
  ignored; relative paths are relative to the list file's folder). Lines are expanded by
  the same rules. A ``.txt`` file named without ``@`` is an input like any other (a MIAS
  ``Info.txt`` caught by ``folder/*`` becomes one NOT_AN_IMAGE record, not 169 bogus paths).

* a URI (``s3://bucket/study/``, ``gs://...``, ``file:///...``): an object is kept as it
  is; a prefix (folder) is listed recursively through a pyarrow filesystem and its objects
  with an image extension are kept, sorted (needs pyarrow, which the ``ray`` extra brings).

A path that does not exist, and a pattern that matches nothing, are kept: they become
NOT_FOUND records, so every argument the user gave is accounted for in the results.

:func:`iter_inputs` expands lazily (a folder is walked as results are consumed, so a
million-file archive starts scoring at once); :func:`expand_inputs` returns the whole list.
Both are public: ``Predictor.iter_predict_paths`` and ``mammo-edge predict`` use them.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from mammo_edge.images.decode import EXTENSION_FORMATS

#: Marks an argument as a list file: ``@paths.txt``.
LIST_PREFIX = "@"
_GLOB_CHARACTERS = set("*?[")
_DICOM_SNIFF_BYTES = 132
#: ``scheme://...`` with a scheme of two or more letters (``C:\\`` is a Windows drive).
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(source: str) -> bool:
    """True for ``scheme://...`` inputs read through a pyarrow filesystem."""
    return bool(_URI.match(source))


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
    return list(iter_inputs(arguments))


def iter_inputs(arguments: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Expand like :func:`expand_inputs`, lazily: paths are yielded as folders are walked.

    Args:
        arguments: what the user named, in order (consumed lazily too).

    Yields:
        Paths as strings, in the same order as :func:`expand_inputs` returns them.
    """
    for argument in arguments:
        yield from _expand_one(str(argument), seen_lists=set())


def _expand_one(argument: str, seen_lists: set[Path]) -> Iterator[str]:
    if is_uri(argument):
        yield from _expand_uri(argument)
        return
    if argument.startswith(LIST_PREFIX):
        yield from _expand_list_file(Path(argument[len(LIST_PREFIX) :]), seen_lists)
        return
    path = Path(argument)
    if path.is_dir():
        yield from iter_images(path)
        return
    if path.is_file():
        yield argument
        return
    if _GLOB_CHARACTERS & set(argument):
        matches = sorted(glob.glob(argument, recursive=True))
        if matches:
            for match in matches:
                if Path(match).is_dir():
                    yield from iter_images(Path(match))
                else:
                    yield match
            return
    yield argument  # reported as NOT_FOUND by the reader


def _expand_list_file(list_path: Path, seen_lists: set[Path]) -> Iterator[str]:
    resolved = list_path.resolve()
    if resolved in seen_lists:
        return  # a list that includes itself would never end
    seen_lists.add(resolved)
    if not list_path.is_file():
        yield str(list_path)
        return
    for line in list_path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        nested = line.startswith(LIST_PREFIX)  # a list may name another list: @more.txt
        entry = Path(line[len(LIST_PREFIX) :] if nested else line).expanduser()
        if not entry.is_absolute():
            entry = list_path.parent / entry
        yield from _expand_one(f"{LIST_PREFIX}{entry}" if nested else str(entry), seen_lists)


def find_images(folder: Path) -> list[str]:
    """All image files under ``folder``, recursively, sorted by path (see module notes)."""
    return list(iter_images(folder))


def iter_images(folder: Path) -> Iterator[str]:
    """:func:`find_images`, lazily: each folder's files (sorted) before its subfolders.

    A folder that cannot be listed (permissions, I/O error) is yielded itself, so the
    reader reports it (UNREADABLE) and no input disappears silently.
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        yield str(folder)
        return
    folders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_folder = entry.is_dir()  # follows links, as os.walk sorted them
            is_link = entry.is_symlink()
        except OSError:
            is_folder = is_link = False
        if is_folder:
            if not is_link:  # as os.walk: a linked folder is not entered (no loops)
                folders.append(entry.name)
            continue
        if entry.name.upper() == "DICOMDIR":
            continue
        path = Path(folder) / entry.name
        if _looks_like_image(path):
            yield str(path)
    for name in folders:
        yield from iter_images(Path(folder) / name)


def _expand_uri(uri: str) -> Iterator[str]:
    """An object URI as it is; a prefix listed recursively (image extensions, sorted)."""
    try:
        from pyarrow import fs as pyarrow_fs

        filesystem, path = pyarrow_fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type != pyarrow_fs.FileType.Directory:
            yield uri
            return
        selector = pyarrow_fs.FileSelector(path, recursive=True)
        found = filesystem.get_file_info(selector)
    except Exception:  # no pyarrow, bad URI, no access: the reader reports it per input
        yield uri
        return
    prefix = uri[: uri.index("://") + 3]
    names = sorted(
        entry.path
        for entry in found
        if entry.type == pyarrow_fs.FileType.File
        and Path(entry.path).suffix.lower() in EXTENSION_FORMATS
        and not any(part.startswith(".") for part in Path(entry.path).parts)
    )
    for name in names:
        yield prefix + name


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
