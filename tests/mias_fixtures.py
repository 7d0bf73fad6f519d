"""Small MIAS-shaped data sets for tests: real Info.txt quirks, tiny synthetic pixels."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MIAS_ARCHIVE = REPO_ROOT.parent / "shared" / "mias" / "all-mias.tar.gz"

INFO_HEADER = """\
              MAMMOGRAPHIC IMAGE ANALYSIS SOCIETY
                  MiniMammographic Database
1st column: MIAS database reference number.
=================================================================

"""

# Rows copied from the real Info.txt: mdb005 has two rows, mdb059 lacks coordinates,
# mdb216 is a "*NOTE 3*" calcification, the rest are NORM rows with a trailing space.
REAL_ROWS = """\
mdb003 D NORM 
mdb004 D NORM 
mdb005 F CIRC B 477 133 30
mdb005 F CIRC B 500 168 26
mdb006 F NORM 
mdb059 F CIRC B
mdb060 G NORM 
mdb216 D CALC M *NOTE 3* 
"""


def pgm_bytes(image: np.ndarray) -> bytes:
    height, width = image.shape
    return f"P5\n{width} {height}\n255\n".encode() + image.astype(np.uint8).tobytes()


def synthetic_image(reference: str, label: int, size: int = 64) -> np.ndarray:
    """A deterministic test image; abnormal ones carry a bright blob."""
    rng = np.random.default_rng(int(reference[3:]))
    image = rng.integers(0, 120, (size, size)).astype(np.uint8)
    if label:
        image[size // 4 : size // 2, size // 4 : size // 2] = 230
    return image


def info_rows(patients: int) -> str:
    """Info.txt rows for ``patients`` patients: every third patient has one abnormal breast."""
    rows = []
    for patient in range(1, patients + 1):
        for number in (2 * patient - 1, 2 * patient):
            reference = f"mdb{number:03d}"
            if patient % 3 == 0 and number % 2:
                rows.append(f"{reference} F CIRC B 500 500 30")
            else:
                rows.append(f"{reference} F NORM ")
    return "\n".join(rows) + "\n"


def write_mias_folder(folder: Path, rows: str, size: int = 64) -> Path:
    """Info.txt with ``rows`` plus a synthetic PGM for every listed image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Info.txt").write_text(INFO_HEADER + rows)
    labels: dict[str, int] = {}
    for line in rows.splitlines():
        fields = line.split()
        labels[fields[0]] = max(labels.get(fields[0], 0), int(fields[2] != "NORM"))
    for reference, label in labels.items():
        (folder / f"{reference}.pgm").write_bytes(
            pgm_bytes(synthetic_image(reference, label, size))
        )
    return folder


def write_mias_archive(folder: Path, archive: Path) -> Path:
    """Pack a MIAS folder flat into a .tar.gz, as the official distribution is."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive
