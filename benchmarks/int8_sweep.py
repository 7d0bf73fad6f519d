"""INT8 recipes tried on a shipped FP32 model: ΔAUC, drift and labels, one row per recipe.

How the ``lite0`` recipe of :mod:`export.quantize` was chosen (``reports/int8/lite0-recipes.md``;
rows in ``reports/int8/sweep/results.jsonl``). Three steps, run from the repository root:

``cache``: preprocess the MIAS images once with the model's own preprocessing::

    python -m benchmarks.int8_sweep cache --data ../shared/mias/all-mias.tar.gz

``recipe NAME METHOD KEEP N``: quantise with ``quantize_static`` (QDQ, per-channel signed
weights) calibrated by METHOD (MinMax, Entropy, Percentile) on N images spread evenly over
the batch, the parts named by KEEP left in FP32 (comma-separated: ``first`` conv, ``head``
from the last conv on, ``headconv`` the conv before it, every ``dw`` depthwise, ``proj``
project or ``expand`` convolution, every residual ``add``; ``none``); then score all images
with both models and append ΔAUC (all images, and those not calibrated on), max and mean
|Δp| and the label agreement at the model's threshold to the results::

    python -m benchmarks.int8_sweep recipe ent Entropy first,head 32 --activations QUInt8
    python -m benchmarks.int8_sweep recipe pct9999 Percentile first,head 32 \\
        --extra '{"CalibPercentile": 99.99}'

``errors INT8.onnx``: per-tensor error of a quantised model against the prepared FP32
graph on 8 images (onnxruntime's ``qdq_loss_debug``; ``sweep/qdq_error_lite0-int8.txt``).

The cache (preprocessed images, the prepared graph, FP32 scores, the candidate models)
lives in ``--cache`` (default ``runs/int8-sweep``, not committed). Speed of the candidates:
:mod:`benchmarks.session_speed`. Every figure is on the images the recipe was chosen on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path("mammo_edge/models/lite0.onnx")
DEFAULT_CACHE = Path("runs/int8-sweep")
DEFAULT_RESULTS = Path("reports/int8/sweep/results.jsonl")
KEEP_PARTS = ("first", "head", "headconv", "dw", "proj", "expand", "add", "none")


def _cached(cache: Path, model: Path, suffix: str) -> Path:
    return cache / f"{model.stem}.{suffix}"


def cache_images(model: Path, data: Path, cache: Path) -> Path:
    """``CACHE/STEM.mias.npz``: every image of ``data`` preprocessed as ``model`` wants."""
    import onnx

    from export.images import load_mias_batch
    from export.provenance import read_metadata_props
    from mammo_edge.model.metadata import ModelMetadata

    cache.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(model), load_external_data=False)
    metadata = ModelMetadata.from_props(read_metadata_props(proto), source=str(model))
    started = time.time()
    loaded = load_mias_batch(data, metadata.preprocess)
    target = _cached(cache, model, "mias.npz")
    np.savez(target, batch=loaded.batch, labels=loaded.labels, refs=np.array(loaded.references))
    print(f"{time.time() - started:.0f} s: {loaded.batch.shape} {loaded.batch.dtype} -> {target}")
    return target


def prepared_graph(model: Path, cache: Path) -> Path:
    """``quant_pre_process`` of ``model`` (shape inference, batch norms folded), cached."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = _cached(cache, model, "pre.onnx")
    if not target.exists():
        quant_pre_process(str(model), str(target), skip_symbolic_shape=True)
    return target


def excluded_nodes(model, keep: str) -> list[str]:
    """The names of the nodes KEEP (module notes) leaves in FP32, in the prepared graph."""
    from export.quantize import fp32_node_names

    parts = set(keep.split(","))
    unknown = sorted(parts - set(KEEP_PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}: expected some of {', '.join(KEEP_PARTS)}")
    nodes = list(model.graph.node)
    convs = [node for node in nodes if node.op_type == "Conv"]
    named = {"first": "first_conv", "head": "head"}
    excluded = fp32_node_names(model, tuple(named[p] for p in ("first", "head") if p in parts))
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def kind(node) -> str:
        groups = [a.i for a in node.attribute if a.name == "group"]
        if groups and groups[0] > 1:
            return "dw"
        following = consumers.get(node.output[0], [])
        return "expand" if any(c.op_type == "Clip" for c in following) else "proj"

    for group in ("dw", "proj", "expand"):
        if group in parts:
            excluded += [node.name for node in convs[1:-2] if kind(node) == group]
    if "add" in parts:
        excluded += [node.name for node in nodes if node.op_type == "Add"]
    if "headconv" in parts:
        excluded.append(convs[-2].name)
    return excluded


def probabilities(path: Path, batch: np.ndarray) -> np.ndarray:
    """``(N,)`` probabilities of ``path`` on ``batch``, one thread, 16 images a call."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate(
        [
            session.run(["probability"], {"image": batch[i : i + 16]})[0]
            for i in range(0, len(batch), 16)
        ]
    ).ravel()


def _reader(batch: np.ndarray, chunk: int):
    """A calibration/activation reader that feeds ``batch`` ``chunk`` images at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter(
                [{"image": batch[i : i + chunk]} for i in range(0, len(batch), chunk)]
            )

        def get_next(self):
            return next(self.chunks, None)

    return Reader()


def sweep_recipe(args: argparse.Namespace) -> dict:
    """Quantise with one recipe, score both models on every image; the result row."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from mammo_edge.evaluation.metrics import roc_auc

    cached = np.load(_cached(args.cache, args.model, "mias.npz"))
    batch, labels = cached["batch"], cached["labels"]
    prepared = prepared_graph(args.model, args.cache)
    exclude = excluded_nodes(onnx.load(str(prepared)), args.keep)
    index = np.linspace(0, len(batch) - 1, args.images).round().astype(int)
    out = args.cache / f"{args.name}.onnx"
    started = time.time()
    quantize_static(
        str(prepared),
        str(out),
        _reader(batch[index], 8),
        quant_format=QuantFormat.QDQ,
        activation_type=getattr(QuantType, args.activations),
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=getattr(CalibrationMethod, args.method),
        nodes_to_exclude=exclude,
        extra_options=json.loads(args.extra),
    )
    seconds = time.time() - started
    fp32_path = _cached(args.cache, args.model, "fp32.npy")
    if not fp32_path.exists():
        np.save(fp32_path, probabilities(args.model, batch))
    fp32, int8 = np.load(fp32_path), probabilities(out, batch)
    held = np.setdiff1d(np.arange(len(batch)), index)
    threshold = args.threshold if args.threshold is not None else _threshold(args.model)
    return {
        "name": args.name,
        "method": args.method,
        "excl": args.keep,
        "ncal": args.images,
        "extra": json.loads(args.extra),
        "n_excluded": len(exclude),
        "quant_s": round(seconds, 1),
        "dauc": roc_auc(labels, int8) - roc_auc(labels, fp32),
        "dauc_held": roc_auc(labels[held], int8[held]) - roc_auc(labels[held], fp32[held]),
        "maxdp": float(np.abs(int8 - fp32).max()),
        "meandp": float(np.abs(int8 - fp32).mean()),
        "agree": float(np.mean((int8 >= threshold) == (fp32 >= threshold))),
    }


def _threshold(model: Path) -> float:
    import onnx

    from export.provenance import read_metadata_props
    from mammo_edge.model.metadata import ModelMetadata

    proto = onnx.load(str(model), load_external_data=False)
    return ModelMetadata.from_props(read_metadata_props(proto), source=str(model)).threshold


def tensor_errors(model: Path, quantized: Path, cache: Path) -> list[str]:
    """Per-tensor error (``xmodel``, ``qdq``) of ``quantized`` against the FP32 graph."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    batch = np.load(_cached(cache, model, "mias.npz"))["batch"][::32][:8]
    prepared = prepared_graph(model, cache)
    float_debug, quant_debug = cache / "debug_fp32.onnx", cache / "debug_int8.onnx"
    modify_model_output_intermediate_tensors(str(prepared), str(float_debug))
    modify_model_output_intermediate_tensors(str(quantized), str(quant_debug))
    matching = create_activation_matching(
        collect_activations(str(quant_debug), _reader(batch, 1)),
        collect_activations(str(float_debug), _reader(batch, 1)),
    )
    errors = compute_activation_error(matching)
    graph = onnx.load(str(prepared)).graph
    order = {output: i for i, node in enumerate(graph.node) for output in node.output}
    lines = []
    for name, error in sorted(errors.items(), key=lambda item: (order.get(item[0], 999), item[0])):
        xmodel, qdq = error.get("xmodel_err"), error.get("qdq_err")
        lines.append(
            f"{order.get(name, 999)} {name[-50:]} "
            + ("" if xmodel is None else f"xmodel {xmodel:.1f}")
            + " "
            + ("" if qdq is None else f"qdq {qdq:.1f}")
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    """``cache``, ``recipe`` and ``errors`` (the module notes)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.int8_sweep",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="%(default)s")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="%(default)s")
    steps = parser.add_subparsers(dest="step", required=True)
    cache = steps.add_parser("cache", help="preprocess the MIAS images once")
    cache.add_argument("--data", type=Path, default=Path("../shared/mias/all-mias.tar.gz"))
    recipe = steps.add_parser("recipe", help="quantise with one recipe and measure it")
    recipe.add_argument("name", help="the row's name; the model is CACHE/NAME.onnx")
    recipe.add_argument("method", choices=("MinMax", "Entropy", "Percentile"))
    recipe.add_argument("keep", help=f"parts kept in FP32: {','.join(KEEP_PARTS)}")
    recipe.add_argument("images", type=int, help="calibration images, spread evenly")
    recipe.add_argument("--extra", default="{}", help="quantize_static's extra_options, JSON")
    recipe.add_argument("--activations", choices=("QInt8", "QUInt8"), default="QInt8")
    recipe.add_argument("--threshold", type=float, help="default: the model's threshold")
    recipe.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="%(default)s")
    errors = steps.add_parser("errors", help="per-tensor error of a quantised model")
    errors.add_argument("quantized", type=Path, help="an INT8 model of --model")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns 0 (1 with a message when the cache or an input is missing)."""
    args = build_parser().parse_args(argv)
    try:
        if args.step == "cache":
            cache_images(args.model, args.data, args.cache)
        elif args.step == "recipe":
            row = sweep_recipe(args)
            print(json.dumps(row))
            args.results.parent.mkdir(parents=True, exist_ok=True)
            with args.results.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
        else:
            print("\n".join(tensor_errors(args.model, args.quantized, args.cache)))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
