"""Where results are written: never over an input, one run at a time, never torn.

Three guarantees every verb that writes files relies on (docs/runtime.md, "Outputs"):

1. :func:`refuse_input_overlap`: an output path that is one of the inputs (by name, by a
   symbolic link or by a hard link) is refused before anything is opened, so
   ``predict study/ -o study/mdb003.pgm`` can no longer truncate the mammogram it is about
   to read.
2. :func:`exclusive_output`: an exclusive lock for the whole run, held on a small
   ``.NAME.lock`` file beside the output (the output itself may be replaced by a rename,
   which would leave a lock on the old file protecting nothing). A second run on the same
   output is refused with a message naming the file and the process holding it.
3. :func:`atomic_file`: whole-file formats are written to a temporary file beside the
   target and renamed over it at the end, so a crash (or a kill) leaves either the old file
   or the complete new one, never a torn mixture.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from mammo_edge.errors import OutputError

#: The suffix of the lock file kept beside an output while a run writes it.
LOCK_SUFFIX = ".lock"


def lock_path(output: Path) -> Path:
    """The lock file guarding ``output``: ``.NAME.lock`` in the same folder."""
    return output.parent / f".{output.name}{LOCK_SUFFIX}"


def refuse_input_overlap(
    outputs: Iterable[Path], inputs: Iterable[str], folders: Iterable[Path] = ()
) -> None:
    """Refuse outputs that are inputs, before either is opened.

    Args:
        outputs: files the run will create or replace.
        inputs: the expanded input paths (URIs and missing paths are compared by name).
        folders: folders the run writes files into; an input inside one is refused too
            (``report out/images --out out`` would overwrite the images it reads).

    Raises:
        OutputError: naming the output and the input it would destroy.
    """
    targets = {}
    for output in outputs:
        targets[os.path.realpath(output)] = output
    identities = {}
    for output in targets.values():
        with contextlib.suppress(OSError):
            status = os.stat(output)
            identities[(status.st_dev, status.st_ino)] = output
    folder_prefixes = [os.path.realpath(folder) + os.sep for folder in folders]
    for source in inputs:
        resolved = os.path.realpath(source)
        output = targets.get(resolved)
        if output is None and identities:
            with contextlib.suppress(OSError, ValueError):
                status = os.stat(source)
                output = identities.get((status.st_dev, status.st_ino))
        if output is not None:
            raise OutputError(
                f"the output {output} is also an input ({source}); writing it would destroy "
                "the image before it is read. Choose another output file"
            )
        for prefix in folder_prefixes:
            if resolved.startswith(prefix):
                raise OutputError(
                    f"the input {source} lies in {prefix.rstrip(os.sep)}, which this run "
                    "writes into; it could be overwritten before it is read. Choose another "
                    "output folder"
                )


@contextlib.contextmanager
def exclusive_output(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output`` for the duration of the ``with`` block.

    The lock is ``flock`` on :func:`lock_path` (released by the kernel if the process
    dies, so a killed run never leaves a stale lock); the file holds the owner's process
    id for the message, and is removed at the end.

    Raises:
        OutputError: another process holds the lock, or the lock file cannot be created.
    """
    guard = lock_path(output)
    handle = _acquire(guard, output)
    try:
        yield
    finally:
        # Unlink while still holding the lock: a run that opened the old file then sees
        # (by its inode check) that it locked a file nobody else will look at, and retries.
        with contextlib.suppress(OSError):
            os.unlink(guard)
        handle.close()


def _acquire(guard: Path, output: Path) -> IO[str]:
    for _attempt in range(5):
        try:
            handle = open(guard, "a+", encoding="utf-8")  # noqa: SIM115 - held past this call
        except OSError as error:
            raise OutputError(
                f"cannot write results to {output}: {error.strerror or error} ({guard})"
            ) from error
        if not _try_lock(handle):
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            who = f" (process {owner})" if owner.isdigit() else ""
            raise OutputError(
                f"{output} is being written by another mammo-edge run{who}; wait for it to "
                "finish or choose another output"
            )
        try:
            same = os.stat(guard).st_ino == os.fstat(handle.fileno()).st_ino
        except OSError:
            same = False
        if not same:  # the previous owner removed the file between our open and lock
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle
    raise OutputError(f"could not lock {guard}: it keeps being replaced; try again")


def _try_lock(handle: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def atomic_file(
    target: Path, *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]:
    """A text file that replaces ``target`` only when the ``with`` block ends normally.

    The content goes to ``.NAME.RANDOM.tmp`` beside ``target`` (same file system, so the
    final :func:`os.replace` is atomic); on an exception the temporary file is removed and
    ``target`` is left as it was.

    Raises:
        OSError: the folder cannot be written.
    """
    temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    # 0o666 and O_EXCL: the umask decides the mode, as for a file opened with "w".
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


#: Formats written to the ``--output`` file as they come (each line whole; ``--resume``
#: repairs a half-written last one). The others are whole files: written beside the target
#: and renamed over it at the end, so a crash never leaves a torn file.
STREAMED_FORMATS = ("jsonl",)


@contextlib.contextmanager
def open_results(output: Path | None, output_format: str, append: bool = False):
    """Standard output, or the file named by ``--output`` (UTF-8, BOM for CSV).

    ``append`` continues the file (``--resume``); the CSV byte-order mark is written only
    at the start of a file, never in the middle. A new json, csv or table file goes to a
    temporary file renamed over ``output`` when the block ends (:func:`atomic_file`).

    Raises:
        OutputError: the file cannot be opened for writing.
    """

    if output is None:
        yield sys.stdout
        return
    encoding = "utf-8-sig" if output_format == "csv" else "utf-8"
    newline = "" if output_format == "csv" else None
    stack = contextlib.ExitStack()
    try:
        if append or output_format in STREAMED_FORMATS:
            handle = stack.enter_context(
                output.open("a" if append else "w", encoding=encoding, newline=newline)
            )
        else:
            handle = stack.enter_context(atomic_file(output, encoding=encoding, newline=newline))
    except OSError as error:
        raise OutputError(f"cannot write results to {output}: {error.strerror}") from error
    with stack:
        yield handle
