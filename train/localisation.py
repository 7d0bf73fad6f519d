"""Does the heatmap peak fall on the lesion? Measured on MIAS images with lesion circles.

For every MIAS image whose Info.txt rows give a lesion centre and radius, a heatmap peak
(original pixels, x from the left, y from the top) is a *hit* when it lies inside one of
the image's lesion circles grown by ``--margin-mm`` (10 mm; MIAS is 200 um per pixel, so
+50 px). Info.txt's y has its origin at the bottom-left: the row is ``1023 - y``.

Chance is what a point drawn uniformly from the breast would score: for each image, the
fraction of its breast-mask pixels (``mammo_edge.images.preprocess.breast_mask``) inside the
grown circles, computed exactly on the pixel grid. Summed over images it is the number of
hits a random pointer expects; the one-sided p-value is the exact Poisson-binomial tail
``P(hits >= observed)`` under those per-image chances.

Peaks come from either source, several at once (``NAME=...``):

* ``--predictions NAME=CSV``: a table with ``image``, ``peak_x``, ``peak_y`` (e.g. the
  lesion protocol's out-of-fold ``runs/lesion/full/predictions.csv``);
* ``--model NAME=MODEL``: a mammo-edge model run here through ``mammo_edge.explain.explainer``
  (its heatmap output, or occlusion), on every image with a circle. Say with ``--note``
  whether those images were in its training data.

Writes ``OUT/localisation.json``, ``OUT/table.md`` and ``OUT/peaks_NAME.csv``.

    python -m train localisation --data ../shared/mias/all-mias.tar.gz \\
        --predictions lite0=runs/lesion/full/predictions.csv --model seed=seed \\
        --note "seed=in-sample" --out reports/localisation
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mammo_edge.images.preprocess import NoBreastFoundError, breast_mask

from .mias import CLASS_CODES, IMAGE_SIZE, AbnormalityRow, MiasDataset, open_mias

#: MIAS pixel size: 200 micrometres (the database README).
MIAS_MM_PER_PIXEL = 0.2
DEFAULT_MARGIN_MM = 10.0


@dataclass(frozen=True)
class LesionImage:
    """One MIAS image with at least one lesion circle (rows in original pixels, y down)."""

    reference: str
    abnormality_class: str
    circles: tuple[tuple[float, float, float], ...]  # (x, row_from_top, radius)


@dataclass(frozen=True)
class PeakResult:
    """One image's peak against its circles."""

    image: str
    abnormality_class: str
    peak_x: float
    peak_y: float
    hit: bool
    distance_to_nearest_circle_px: float
    chance: float


@dataclass(frozen=True)
class ClassSummary:
    """Hits against chance for one abnormality class (or ``all``)."""

    abnormality_class: str
    n_images: int
    hits: int
    hit_rate: float
    chance_rate: float
    expected_hits: float
    p_value: float


def lesion_images(dataset: MiasDataset) -> list[LesionImage]:
    """Every image with at least one Info.txt row holding a centre and a radius."""
    images = []
    for record in dataset.records:
        rows: list[AbnormalityRow] = [
            row
            for row in record.rows
            if row.x is not None and row.y is not None and row.radius is not None
        ]
        if not rows:
            continue
        classes = {row.abnormality_class for row in rows}
        if len(classes) != 1:
            raise ValueError(f"{record.reference}: circles of several classes {sorted(classes)}")
        circles = tuple(
            (float(row.x), float(row.row_from_top), float(row.radius))  # type: ignore[arg-type]
            for row in rows
        )
        images.append(LesionImage(record.reference, classes.pop(), circles))
    return images


def circles_mask(shape: tuple[int, int], circles, margin_px: float) -> np.ndarray:
    """Bool mask of the pixels within ``radius + margin_px`` of any circle's centre."""
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    inside = np.zeros(shape, dtype=bool)
    for x, y, radius in circles:
        inside |= (columns - x) ** 2 + (rows - y) ** 2 <= (radius + margin_px) ** 2
    return inside


def score_peak(
    image: LesionImage, peak: tuple[float, float], pixels: np.ndarray, margin_px: float
) -> PeakResult:
    """Hit or miss of one peak, and the chance a uniform breast point would hit."""
    peak_x, peak_y = peak
    distances = [
        math.hypot(peak_x - x, peak_y - y) - (radius + margin_px) for x, y, radius in image.circles
    ]
    nearest = min(distances)
    try:
        breast = breast_mask(pixels)
    except NoBreastFoundError:
        breast = np.ones(pixels.shape, dtype=bool)
    grown = circles_mask(pixels.shape, image.circles, margin_px)
    chance = float((breast & grown).sum() / breast.sum())
    return PeakResult(
        image=image.reference,
        abnormality_class=image.abnormality_class,
        peak_x=float(peak_x),
        peak_y=float(peak_y),
        hit=nearest <= 0.0,
        distance_to_nearest_circle_px=max(0.0, nearest),
        chance=chance,
    )


def poisson_binomial_tail(probabilities: list[float], observed: int) -> float:
    """``P(X >= observed)`` for X a sum of independent Bernoulli(p_i) (exact, by DP)."""
    distribution = np.zeros(len(probabilities) + 1)
    distribution[0] = 1.0
    for probability in probabilities:
        distribution[1:] = distribution[1:] * (1 - probability) + distribution[:-1] * probability
        distribution[0] *= 1 - probability
    return float(min(1.0, distribution[observed:].sum()))


def summarise(results: list[PeakResult]) -> list[ClassSummary]:
    """Per class (Info.txt order), then ``all``."""
    groups = [
        (code, [r for r in results if r.abnormality_class == code])
        for code in CLASS_CODES
        if code != "NORM"
    ]
    groups.append(("all", results))
    summaries = []
    for code, members in groups:
        if not members:
            continue
        hits = sum(r.hit for r in members)
        chances = [r.chance for r in members]
        summaries.append(
            ClassSummary(
                abnormality_class=code,
                n_images=len(members),
                hits=hits,
                hit_rate=hits / len(members),
                chance_rate=float(np.mean(chances)),
                expected_hits=float(np.sum(chances)),
                p_value=poisson_binomial_tail(chances, hits),
            )
        )
    return summaries


def peaks_from_csv(path: Path) -> dict[str, tuple[float, float]]:
    """``image -> (peak_x, peak_y)`` from a table with those columns."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "peak_x", "peak_y"} - set(reader.fieldnames or ())
        if missing:
            raise SystemExit(f"{path}: lacks column(s) {', '.join(sorted(missing))}")
        peaks = {}
        for row in reader:
            if row["peak_x"] in ("", None) or row["peak_y"] in ("", None):
                continue
            image = Path(row["image"]).stem
            peaks[image] = (float(row["peak_x"]), float(row["peak_y"]))
    return peaks


def peaks_from_model(
    model: str, dataset: MiasDataset, images: list[LesionImage], log
) -> tuple[dict[str, tuple[float, float]], str, dict]:
    """Run ``mammo_edge.explain.explainer`` with ``model`` on the images; peaks, method, model
    facts."""
    from mammo_edge.explain.explainer import Explainer
    from mammo_edge.images.decode import decode_image_bytes
    from mammo_edge.predictor import Predictor

    predictor = Predictor(model, device="cpu", batch_size=8, workers=1)
    explainer = Explainer(predictor)
    log(f"{model}: {predictor.model_name} {predictor.model_version}, heatmap by {explainer.method}")
    pixels = (
        decode_image_bytes(dataset.read_bytes(image.reference), suffix=".pgm").pixels
        for image in images
    )
    peaks = {}
    started = time.time()
    for image, explained in zip(images, explainer.iter_explain(pixels), strict=True):
        if explained.peak is None:
            log(f"  {image.reference}: {explained.record.error_code} (counted as a miss)")
            continue
        peaks[image.reference] = (explained.peak.x, explained.peak.y)
    log(f"  {len(peaks)} peaks in {time.time() - started:.0f} s")
    facts = {
        "model_name": predictor.model_name,
        "model_version": predictor.model_version,
        "model_sha256": predictor.model_sha256,
        "heatmap_method": explainer.method,
    }
    return peaks, explainer.method, facts


def evaluate_source(
    peaks: dict[str, tuple[float, float]],
    images: list[LesionImage],
    dataset: MiasDataset,
    margin_px: float,
    pixels_cache: dict[str, np.ndarray],
) -> tuple[list[PeakResult], list[str]]:
    """Score every image; an image without a peak is a miss at chance (listed)."""
    from mammo_edge.images.decode import decode_image_bytes

    results, missing = [], []
    for image in images:
        if image.reference not in pixels_cache:
            data = dataset.read_bytes(image.reference)
            pixels_cache[image.reference] = decode_image_bytes(data, suffix=".pgm").pixels
        pixels = pixels_cache[image.reference]
        if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{image.reference}: expected 1024x1024, got {pixels.shape}")
        peak = peaks.get(image.reference)
        if peak is None:
            missing.append(image.reference)
            peak = (-1e9, -1e9)  # no peak: scored as a miss, its chance still counted
        results.append(score_peak(image, peak, pixels, margin_px))
    return results, missing


def markdown_table(sources: list[dict]) -> str:
    """Hit rate per class, one column per source, beside the chance rate.

    Chance depends only on the images and their circles, so it is one column when every
    source scored the same images (it always does: a missing peak is a miss).
    """
    names = [source["name"] for source in sources]
    lines = [
        "| class | n | chance | " + " | ".join(names) + " |",
        "|" + "---|" * (3 + len(names)),
    ]
    for code in [summary["abnormality_class"] for summary in sources[0]["summary"]]:
        summaries = [
            next(s for s in source["summary"] if s["abnormality_class"] == code)
            for source in sources
        ]
        cells = [f"{s['hits']}/{s['n_images']} ({s['hit_rate']:.0%})" for s in summaries]
        label = f"{code} ({CLASS_CODES[code]})" if code != "all" else "all"
        lines.append(
            f"| {label} | {summaries[0]['n_images']} | {summaries[0]['chance_rate']:.0%} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    for source in sources:
        overall = next(s for s in source["summary"] if s["abnormality_class"] == "all")
        lines.append(
            f"- {source['name']}: {source['description']}. All classes: {overall['hits']} hits "
            f"where chance expects {overall['expected_hits']:.1f}; one-sided exact "
            f"p = {overall['p_value']:.2g}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train localisation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", required=True, help="MIAS folder or all-mias.tar.gz")
    parser.add_argument(
        "--predictions",
        action="append",
        default=[],
        metavar="NAME=CSV",
        help="peaks from a table (image, peak_x, peak_y in original pixels, y from the top)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=MODEL",
        help="peaks from a mammo-edge model run here (installed name, folder or .onnx)",
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="how a source's peaks were made (e.g. out-of-fold, in-sample)",
    )
    parser.add_argument("--margin-mm", type=float, default=DEFAULT_MARGIN_MM)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
        parsed = []
        for value in values:
            name, sep, rest = value.partition("=")
            if not sep or not name or not rest:
                parser.error(f"{flag} takes NAME=VALUE, got {value!r}")
            parsed.append((name, rest))
        return parsed

    notes = dict(pairs(args.note, "--note"))
    dataset = open_mias(args.data)
    images = lesion_images(dataset)
    margin_px = args.margin_mm / MIAS_MM_PER_PIXEL
    log(f"{len(images)} images with lesion circles; margin {args.margin_mm} mm = {margin_px:g} px")
    pixels_cache: dict[str, np.ndarray] = {}
    sources = []
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [("predictions", n, v) for n, v in pairs(args.predictions, "--predictions")]
    todo += [("model", n, v) for n, v in pairs(args.model, "--model")]
    if not todo:
        parser.error("give at least one --predictions or --model")
    for kind, name, value in todo:
        facts: dict = {}
        if kind == "predictions":
            peaks = peaks_from_csv(Path(value))
            description = f"peaks from {value}"
        else:
            peaks, method, facts = peaks_from_model(value, dataset, images, log)
            description = f"{facts['model_name']} {facts['model_version']} ({method})"
        if name in notes:
            description += f", {notes[name]}"
        results, missing = evaluate_source(peaks, images, dataset, margin_px, pixels_cache)
        summary = summarise(results)
        overall = summary[-1]
        log(
            f"{name}: {overall.hits}/{overall.n_images} peaks in a lesion circle "
            f"({overall.hit_rate:.0%}) vs chance {overall.chance_rate:.0%}"
        )
        with (args.out / f"peaks_{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(asdict(results[0])))
            writer.writeheader()
            for result in results:
                row = asdict(result)
                for key in ("peak_x", "peak_y", "distance_to_nearest_circle_px"):
                    row[key] = f"{row[key]:.1f}"
                row["chance"] = f"{row['chance']:.4f}"
                writer.writerow(row)
        sources.append(
            {
                "name": name,
                "source": value,
                "kind": kind,
                "description": description,
                **facts,
                "images_without_peak": missing,
                "summary": [asdict(s) for s in summary],
            }
        )
    document = {
        "data": str(args.data),
        "data_sha256": dataset.sha256(),
        "margin_mm": args.margin_mm,
        "margin_px": margin_px,
        "hit": "peak within radius + margin of any Info.txt circle of the image",
        "chance": "mean over images of the share of breast-mask pixels inside the grown circles",
        "p_value": "one-sided exact Poisson-binomial P(hits >= observed) at the per-image chances",
        "n_images": len(images),
        "sources": sources,
    }
    (args.out / "localisation.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown_table(sources)
    (args.out / "table.md").write_text(table)
    print(table)
    return 0
