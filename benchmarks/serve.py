"""``python -m benchmarks.serve``: the targets of ``mammo-edge serve`` (issue 17), measured.

Four measurements, each against a real ``mammo-edge serve`` process on 127.0.0.1:

- ``latency``: receive -> SR sent, per MIAS-size image (1024 x 1024), after the study is
  stable: a test SCP receives the SR; the time from the last C-STORE's answer to the SR's
  arrival, minus ``--stable-after``, divided by the study's images. Target: <= 2 s.
- ``http``: ``POST /v1/predict`` throughput under 16 concurrent clients against the
  library's ``predict`` (``Predictor.iter_predict``) on the same images. Target: >= 80%.
- ``memory``: the node's resident memory while it receives and scores 1,000 instances.
  Target: flat (no growth with the count).
- ``sigkill``: 50 associations x 10 instances in parallel, SIGKILL half-way, restart;
  every instance must appear exactly once in results.jsonl.

Each writes its section into ``OUT/results.json`` and rewrites ``OUT/results.md``. Inputs
are examples/*.pgm wrapped as MG DICOM (tests/serve_fixtures.py). The share of the CPUs used
by other processes during each measurement is recorded (``foreign_share``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.machine import CpuWatch, machine_info
from tests.serve_fixtures import (
    EXAMPLES,
    ReceivingScp,
    free_port,
    mammogram_dataset,
    read_pgm,
    read_results,
    send_datasets,
    start_serve,
)

NAMES = ("mdb003", "mdb004", "mdb005", "mdb006", "mdb028", "mdb178")


def _pixels():
    return [read_pgm(EXAMPLES / f"{name}.pgm") for name in NAMES]


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _stop(process) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def measure_latency(study_sizes=(1, 2, 4), repeats: int = 5, stable_after: float = 1.0) -> dict:
    """Seconds from a stable study to its SR at a peer, per image."""
    from pydicom.uid import generate_uid

    pixels = _pixels()
    receiver = ReceivingScp()
    rows = []
    with TemporaryDirectory() as root:
        process, info = start_serve(
            Path(root) / "out",
            "--dicom-port",
            "0",
            "--stable-after",
            str(stable_after),
            "--send-to",
            f"{receiver.ae_title}@127.0.0.1:{receiver.port}",
        )
        watch = CpuWatch().start()
        try:
            # one warm-up study: the first run of onnxruntime allocates its arenas
            warm = generate_uid()
            send_datasets(info["dicom_port"], [mammogram_dataset(pixels[0], study_uid=warm)])
            _wait(lambda: any(ds.StudyInstanceUID == warm for ds in receiver.by_modality("SR")), 60)
            for size in study_sizes:
                for repeat in range(repeats):
                    study = generate_uid()
                    datasets = [
                        mammogram_dataset(pixels[(repeat + i) % len(pixels)], study_uid=study)
                        for i in range(size)
                    ]
                    send_datasets(info["dicom_port"], datasets)
                    sent = time.perf_counter()

                    def arrived(study=study):
                        return any(
                            ds.StudyInstanceUID == study for ds in receiver.by_modality("SR")
                        )

                    if not _wait(arrived, 120):
                        raise RuntimeError(f"no SR for a {size}-image study within 120 s")
                    seconds = time.perf_counter() - sent - stable_after
                    rows.append({"images": size, "seconds": round(seconds, 3)})
        finally:
            _stop(process)
            cpu = watch.stop()
            receiver.close()
    summary = []
    for size in study_sizes:
        values = [row["seconds"] for row in rows if row["images"] == size]
        summary.append(
            {
                "images": size,
                "median_s": round(statistics.median(values), 3),
                "max_s": round(max(values), 3),
                "median_per_image_s": round(statistics.median(values) / size, 3),
                "max_per_image_s": round(max(values) / size, 3),
            }
        )
    return {
        "stable_after_s": stable_after,
        "repeats": repeats,
        "runs": rows,
        "summary": summary,
        "target_per_image_s": 2.0,
        "cpu": cpu,
    }


def measure_http(
    requests: int = 96, clients: int = 16, repeats: int = 5, engine: tuple[str, ...] = ()
) -> dict:
    """Images/s of ``POST /v1/predict`` (16 clients) against ``Predictor.iter_predict``.

    The two are run in turns (library, HTTP, library, HTTP...) with the server up all along,
    so a change in the machine's other load hits both alike; the ratio is taken per turn.
    ``engine``: extra ``serve`` arguments (``--engine ray --replicas 2``).
    """
    import httpx

    from mammo_edge import Predictor

    paths = [EXAMPLES / f"{NAMES[i % len(NAMES)]}.pgm" for i in range(requests)]
    predictor = Predictor()
    local = threading.local()
    library, served = [], []
    with TemporaryDirectory() as root:
        process, info = start_serve(Path(root) / "out", "--http-port", "0", *engine, timeout=300)
        url = f"http://127.0.0.1:{info['http_port']}/v1/predict"

        def post(path: Path) -> int:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=120)
            with open(path, "rb") as stream:
                return local.client.post(url, files={"file": (path.name, stream)}).status_code

        watch = CpuWatch().start()
        try:
            with ThreadPoolExecutor(clients) as pool:
                list(predictor.iter_predict([str(path) for path in paths[:8]]))  # warm-up
                assert set(pool.map(post, paths[:clients])) == {200}  # warm-up
                for _ in range(repeats):
                    started = time.perf_counter()
                    results = list(predictor.iter_predict([str(path) for path in paths]))
                    library.append(requests / (time.perf_counter() - started))
                    assert all(result.ok for result in results)
                    started = time.perf_counter()
                    statuses = list(pool.map(post, paths))
                    served.append(requests / (time.perf_counter() - started))
                    assert set(statuses) == {200}, Counter(statuses)
        finally:
            _stop(process)
            cpu = watch.stop()
    ratios = [http / lib for http, lib in zip(served, library, strict=True)]
    return {
        "requests": requests,
        "clients": clients,
        "repeats": repeats,
        "library_images_per_s": [round(value, 2) for value in library],
        "http_images_per_s": [round(value, 2) for value in served],
        "ratios": [round(value, 3) for value in ratios],
        "ratio": round(statistics.median(ratios), 3),
        "target_ratio": 0.8,
        "serve_arguments": list(engine),
        "cpu": cpu,
    }


def measure_memory(instances: int = 1000, per_study: int = 4, senders: int = 2) -> dict:
    """The node's resident memory while it receives and scores ``instances``."""
    import psutil
    from pydicom.uid import generate_uid

    pixels = _pixels()
    samples = []
    with TemporaryDirectory() as root:
        out = Path(root) / "out"
        process, info = start_serve(out, "--dicom-port", "0", "--stable-after", "0.5")
        node = psutil.Process(process.pid)
        studies = [
            [
                mammogram_dataset(pixels[(s + i) % len(pixels)], study_uid=uid)
                for i in range(per_study)
            ]
            for s, uid in enumerate(generate_uid() for _ in range(instances // per_study))
        ]
        port = info["dicom_port"]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(
                    {
                        "t": round(time.perf_counter() - started, 1),
                        "recorded": len(read_results(out)),
                        "rss_mb": round(node.memory_info().rss / 2**20, 1),
                    }
                )
                stop.wait(2.0)

        watch = CpuWatch().start()
        started = time.perf_counter()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with ThreadPoolExecutor(senders) as pool:
                for statuses in pool.map(lambda batch: send_datasets(port, batch), studies):
                    assert set(statuses) == {0}
            if not _wait(lambda: len(read_results(out)) >= instances, 3600):
                raise RuntimeError("not every instance was scored within an hour")
        finally:
            stop.set()
            sampler.join()
            _stop(process)
            cpu = watch.stop()
    checkpoints = {}
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        target = instances * fraction
        reached = next((s for s in samples if s["recorded"] >= target), samples[-1])
        checkpoints[str(int(target))] = reached["rss_mb"]
    return {
        "instances": instances,
        "per_study": per_study,
        "rss_mb_at_recorded": checkpoints,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "seconds": round(time.perf_counter() - started, 1),
        "samples": samples,
        "cpu": cpu,
    }


def measure_sigkill(associations: int = 50, per_association: int = 10) -> dict:
    """Kill the node half-way through parallel associations; count records per instance."""
    from pydicom.uid import generate_uid

    pixels = read_pgm(EXAMPLES / "mdb003.pgm")[::2, ::2].copy()
    batches = [
        [mammogram_dataset(pixels, study_uid=study) for _ in range(per_association)]
        for study in (generate_uid() for _ in range(associations))
    ]
    expected = {ds.SOPInstanceUID for batch in batches for ds in batch}
    with TemporaryDirectory() as root:
        out = Path(root) / "out"
        port = free_port()
        arguments = ("--dicom-port", str(port), "--stable-after", "0.5")
        process, _ = start_serve(out, *arguments)
        done: list = []
        attempts = Counter()
        deadline = time.monotonic() + 1800

        def sender(index: int, batch) -> None:
            while time.monotonic() < deadline:
                attempts[index] += 1
                try:
                    if send_datasets(port, batch, pause=0.05) == [0] * len(batch):
                        done.append(index)
                        return
                except Exception:
                    pass
                time.sleep(0.5)

        watch = CpuWatch().start()
        started = time.perf_counter()
        threads = [
            threading.Thread(target=sender, args=(index, batch))
            for index, batch in enumerate(batches)
        ]
        for thread in threads:
            thread.start()
        spooled = lambda: sum(1 for _ in (out / "spool").glob("*/*/*.dcm"))  # noqa: E731
        _wait(lambda: spooled() >= len(expected) // 2, 600)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        at_kill = {"spooled": spooled(), "recorded": len(read_results(out))}
        process, _ = start_serve(out, *arguments)
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic()))
        _wait(
            lambda: {r["sop_instance_uid"] for r in read_results(out)} >= expected,
            max(1.0, deadline - time.monotonic()),
        )
        time.sleep(2.0)
        counts = Counter(record["sop_instance_uid"] for record in read_results(out))
        seconds = time.perf_counter() - started
        exit_code = _stop(process)
        cpu = watch.stop()
    return {
        "associations": associations,
        "per_association": per_association,
        "instances": len(expected),
        "at_kill": at_kill,
        "senders_done": len(done),
        "associations_retried": sum(1 for n in attempts.values() if n > 1),
        "recorded_instances": len(counts),
        "missing": len(expected - set(counts)),
        "recorded_more_than_once": sum(1 for n in counts.values() if n > 1),
        "exactly_once": set(counts) == expected and set(counts.values()) == {1},
        "sigterm_exit_code": exit_code,
        "seconds": round(seconds, 1),
        "cpu": cpu,
    }


MEASUREMENTS = {
    "latency": measure_latency,
    "http": measure_http,
    "http-ray": lambda: measure_http(engine=("--engine", "ray", "--replicas", "2")),
    "memory": measure_memory,
    "sigkill": measure_sigkill,
}


def render_markdown(results: dict) -> str:
    """The report of every measurement run so far."""
    lines = ["# `mammo-edge serve` benchmark", ""]
    lines += [
        "Measured by `benchmarks/serve.py` against real `mammo-edge serve` processes on "
        "127.0.0.1, default model. `foreign_share`: the share of all cores' time used by other "
        "processes during the measurement (a training job shared this 2-core machine).",
        "",
    ]
    machine = results.get("machine", {})
    if machine:
        lines += [
            f"Machine: {machine.get('cpu')}, {machine.get('logical_cores')} cores, "
            f"load average at start {machine.get('load_average_at_start')}.",
            "",
        ]
    if "latency" in results:
        section = results["latency"]
        lines += [
            "## Receive -> SR sent, after the study is stable (target <= 2 s per image)",
            "",
            f"`{section['command']}`; {section['repeats']} studies per size, 1024 x 1024 "
            f"MG images, stable-after {section['stable_after_s']} s (not counted); "
            f"foreign_share {section['cpu']['foreign_share']}.",
            "",
            "| images in study | median s | max s | median s / image | max s / image |",
            "|---|---|---|---|---|",
        ]
        for row in section["summary"]:
            lines.append(
                f"| {row['images']} | {row['median_s']} | {row['max_s']} | "
                f"{row['median_per_image_s']} | {row['max_per_image_s']} |"
            )
        lines.append("")
    for key in ("http", "http-ray"):
        if key not in results:
            continue
        section = results[key]
        engine = " ".join(section.get("serve_arguments") or ["--engine", "local"])
        lines += [
            f"## HTTP /v1/predict under concurrent clients, `serve {engine}` "
            "(target >= 80% of predict)",
            "",
            f"`{section['command']}`: {section['requests']} images (examples/*.pgm), "
            f"{section['clients']} client threads in the benchmark process, "
            f"{section['repeats']} runs each.",
            "",
            "| run | `Predictor.iter_predict` images/s | `POST /v1/predict` images/s | ratio |",
            "|---|---|---|---|",
            *(
                f"| {number} | {lib} | {http} | {ratio} |"
                for number, (lib, http, ratio) in enumerate(
                    zip(
                        section["library_images_per_s"],
                        section["http_images_per_s"],
                        section["ratios"],
                        strict=True,
                    ),
                    start=1,
                )
            ),
            "",
            f"Median ratio: **{section['ratio']}**; foreign_share "
            f"{section['cpu']['foreign_share']}.",
            "",
        ]
    if "memory" in results:
        section = results["memory"]
        points = ", ".join(
            f"{count}: {rss} MB" for count, rss in section["rss_mb_at_recorded"].items()
        )
        lines += [
            "## Memory over 1,000 instances (target: flat)",
            "",
            f"`{section['command']}`: {section['instances']} MG instances (1024 x 1024) in "
            f"studies of {section['per_study']}, sent, scored, SR and overlays written, "
            f"in {section['seconds']} s; foreign_share {section['cpu']['foreign_share']}.",
            "",
            f"Resident memory of the node when N instances were recorded: {points}; "
            f"maximum {section['rss_mb_max']} MB.",
            "",
        ]
    if "sigkill" in results:
        section = results["sigkill"]
        lines += [
            "## Nothing lost: SIGKILL half-way, restart",
            "",
            f"`{section['command']}`: {section['associations']} associations x "
            f"{section['per_association']} instances in parallel; killed with "
            f"{section['at_kill']['spooled']} instances spooled and "
            f"{section['at_kill']['recorded']} recorded; {section['associations_retried']} "
            "associations retried after the restart.",
            "",
            f"Instances recorded: {section['recorded_instances']} of {section['instances']}; "
            f"missing {section['missing']}; recorded more than once "
            f"{section['recorded_more_than_once']}; **exactly once: "
            f"{section['exactly_once']}**; exit code after SIGTERM "
            f"{section['sigterm_exit_code']}; {section['seconds']} s in all; foreign_share "
            f"{section['cpu']['foreign_share']}.",
            "",
        ]
    if results.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in results["notes"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__)
    parser.add_argument("measurements", nargs="+", choices=sorted(MEASUREMENTS))
    parser.add_argument("--out", type=Path, default=Path("reports/serve"))
    parser.add_argument(
        "--note", action="append", default=[], help="a line for the report's Notes (repeatable)"
    )
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = machine_info()
    results["notes"] = [*results.get("notes", []), *arguments.note]
    for name in arguments.measurements:
        section = MEASUREMENTS[name]()
        section["command"] = shlex.join(["python", "-m", "benchmarks.serve", name])
        results[name] = section
        path.write_text(json.dumps(results, indent=2) + "\n")
        (arguments.out / "results.md").write_text(render_markdown(results))
        print(json.dumps({k: v for k, v in section.items() if k not in ("samples", "runs")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
