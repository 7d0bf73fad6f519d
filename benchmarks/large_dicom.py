"""Large DICOMs end to end: peak memory and images/s of ``mammo-edge predict`` on a folder
of 4.5k x 2.8k 16-bit frames, as full-field digital mammography delivers them.

The frames are MIAS images scaled up to 2800 x 4500 (columns x rows), 12 bits stored in
16 (value x 16 plus a little noise), with a window and a rescale, written as uncompressed
MG DICOM: the pixel content is real breast, the size is a detector's. Each run is a fresh
``python -m mammo_edge.cli predict FOLDER`` at its defaults (the default model unless
``--model``), its peak RSS read from ``/proc`` (VmHWM) as in :mod:`benchmarks.endtoend`.

    python -m benchmarks.large_dicom --images 8 --repeats 3 --out reports/benchmarks/large_dicom
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mammo_edge.bench.process import cli_command, run_process

from .endtoend import add_compare_option
from .sources import MIAS_ARCHIVE, REPOSITORY

ROWS, COLUMNS = 4500, 2800


def write_large_dicoms(folder: Path, count: int) -> str:
    """Write ``count`` 2800 x 4500 12-bit MG DICOMs made from MIAS images; returns the origin."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from train.mias import open_mias

    folder.mkdir(parents=True, exist_ok=True)
    dataset = open_mias(MIAS_ARCHIVE)
    references = [record.reference for record in dataset.records][:count]
    rng = np.random.default_rng(0)
    for index, reference in enumerate(references):
        image = dataset.read_image(reference)
        large = cv2.resize(image, (COLUMNS, ROWS), interpolation=cv2.INTER_LINEAR)
        stored = large.astype(np.uint16) * 16 + rng.integers(0, 16, large.shape, dtype=np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # digital mammography
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        item = Dataset()
        item.file_meta = meta
        item.SOPClassUID = meta.MediaStorageSOPClassUID
        item.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        item.Modality = "MG"
        item.Rows, item.Columns = ROWS, COLUMNS
        item.SamplesPerPixel = 1
        item.PhotometricInterpretation = "MONOCHROME2"
        item.BitsAllocated, item.BitsStored, item.HighBit = 16, 12, 11
        item.PixelRepresentation = 0
        item.RescaleSlope, item.RescaleIntercept = 1, 0
        item.WindowCenter, item.WindowWidth = 2048, 4096
        item.PixelData = stored.tobytes()
        item.save_as(folder / f"large{index:03d}.dcm", enforce_file_format=True)
    return f"{len(references)} MIAS images of {MIAS_ARCHIVE.name} scaled to {COLUMNS}x{ROWS}"


def measure(folder: Path, count: int, repeats: int, extra: list[str], repository: Path) -> dict:
    """Median wall time and the largest peak RSS of ``repeats`` CLI runs over ``folder``."""
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(repeats):
            output = Path(work) / f"out{repeat}.jsonl"
            arguments = ["predict", str(folder), "--format", "jsonl", "--output", str(output)]
            run = run_process(
                cli_command([*arguments, "--quiet", *extra]),
                Path(work) / "stdout.txt",
                cwd=repository,
            )
            if run.exit_code != 0:
                raise SystemExit(f"predict failed ({run.exit_code}): {run.stderr_tail}")
            records = [json.loads(line) for line in output.read_text().splitlines()]
            scored = sum(record["status"] == "ok" for record in records)
            runs.append({"wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb, "scored": scored})
    wall = statistics.median(run["wall_s"] for run in runs)
    return {
        "images": count,
        "flags": extra,
        "repository": str(repository),
        "runs": runs,
        "median_wall_s": wall,
        "images_per_s": count / wall,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "scored": min(run["scored"] for run in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_dicom", description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    add_compare_option(parser)
    parser.add_argument("flags", nargs="*", help="extra mammo-edge predict flags, after --")
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "dicoms"
        origin = write_large_dicoms(folder, arguments.images)
        results = []
        for repository in [REPOSITORY, *arguments.compare]:
            print(f"measuring {repository} ...", file=sys.stderr)
            results.append(
                measure(folder, arguments.images, arguments.repeats, arguments.flags, repository)
            )
    report = {"origin": origin, "size": [COLUMNS, ROWS], "bits_stored": 12, "results": results}
    (arguments.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    for result in results:
        print(
            f"{result['repository']}: {result['images']} DICOMs {COLUMNS}x{ROWS}, "
            f"{result['images_per_s']:.2f} images/s (median of {len(result['runs'])}, start-up "
            f"included), peak RSS {result['peak_rss_mb']:.0f} MB, scored {result['scored']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
