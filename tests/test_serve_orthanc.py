"""The round trip through a real PACS: DCMTK storescu -> Orthanc -> mammo-edge -> Orthanc.

Orthanc (Debian's ``orthanc``) is started by the test with its own configuration: a Lua
script routes every stored MG instance to the node, and the node sends its SR and overlays
back to Orthanc. The SR is then fetched over Orthanc's REST API, dumped with DCMTK's
``dsrdump`` and read with highdicom; its probabilities must equal ``predict``'s.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")

ORTHANC = shutil.which("Orthanc")
STORESCU = shutil.which("storescu")
DSRDUMP = shutil.which("dsrdump")
pytestmark = pytest.mark.skipif(
    not (ORTHANC and STORESCU and DSRDUMP),
    reason="needs Debian's orthanc and dcmtk (apt-get install orthanc dcmtk)",
)

from pydicom.uid import generate_uid  # noqa: E402

from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    free_port,
    mammogram_dataset,
    read_pgm,
    start_serve,
    write_dataset,
)

ROUTE_LUA = """
function OnStoredInstance(instanceId, tags, metadata, origin)
   if tags["Modality"] == "MG" then
      SendToModality(instanceId, "mammoedge")
   end
end
"""


class OrthancServer:
    """An Orthanc process on 127.0.0.1 with its own folders, ports and configuration."""

    def __init__(self, root, node_port: int) -> None:
        self.http_port, self.dicom_port = free_port(), free_port()
        config = {
            "Name": "mammo-edge-test",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomModalities": {"mammoedge": ["MAMMOEDGE", "127.0.0.1", node_port]},
            "LuaScripts": [str(root / "route.lua")],
            "Plugins": [],
        }
        (root / "route.lua").write_text(ROUTE_LUA)
        (root / "orthanc.json").write_text(json.dumps(config))
        self.log = open(root / "orthanc.log", "wb")
        self.process = subprocess.Popen(
            [ORTHANC, str(root / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/system")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError((root / "orthanc.log").read_text()) from None
                time.sleep(0.1)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            return r.read()

    def instances_of_modality(self, modality: str) -> list[str]:
        found = []
        for instance in json.loads(self.get("/instances")):
            tags = json.loads(self.get(f"/instances/{instance}/simplified-tags"))
            if tags.get("Modality") == modality:
                found.append(instance)
        return found

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def test_storescu_orthanc_autoroute_and_sr_back_in_orthanc(tmp_path):
    import pydicom

    from mammo_edge import Predictor
    from mammo_edge.serve.structured_report import read_probabilities

    node_port = free_port()
    orthanc = OrthancServer(tmp_path, node_port)
    node, _ = start_serve(
        tmp_path / "out",
        "--dicom-port",
        str(node_port),
        "--stable-after",
        "0.5",
        "--send-to",
        f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
    )
    try:
        study = generate_uid()
        files, names = [], {}
        for name, side in (("mdb003", "L"), ("mdb004", "R")):
            dataset = mammogram_dataset(
                read_pgm(EXAMPLES / f"{name}.pgm"), study_uid=study, laterality=side
            )
            files.append(write_dataset(dataset, tmp_path / "in" / f"{name}.dcm"))
            names[dataset.SOPInstanceUID] = name
        sent = subprocess.run(
            [STORESCU, "-aec", "ORTHANC", "127.0.0.1", str(orthanc.dicom_port), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr

        deadline = time.monotonic() + 90
        reports = []
        while not reports and time.monotonic() < deadline:
            reports = orthanc.instances_of_modality("SR")
            time.sleep(0.3)
        assert reports, "no SR arrived back in Orthanc"
        report_file = tmp_path / "sr.dcm"
        report_file.write_bytes(orthanc.get(f"/instances/{reports[0]}/file"))

        dump = subprocess.run(
            [DSRDUMP, str(report_file)], capture_output=True, text=True, timeout=30
        )
        assert dump.returncode == 0, dump.stderr
        assert "Imaging Measurement Report" in dump.stdout
        assert "Probability of abnormality" in dump.stdout
        assert "POINT" in dump.stdout

        # predict on the same files, as one study: each breast weighed against the other
        by_name = {
            Path(record.path).stem: record
            for record in Predictor().iter_predict_paths([str(tmp_path / "in")])
        }
        assert {record.view_group for record in by_name.values()} == {"exam"}
        found = read_probabilities(pydicom.dcmread(report_file))
        assert set(found) == set(names)
        for uid, probability in found.items():
            expected = by_name[names[uid]].probability
            assert probability == pytest.approx(expected, abs=1e-6)
        while len(orthanc.instances_of_modality("OT")) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert len(orthanc.instances_of_modality("OT")) == 2  # the two overlays
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(20)
        orthanc.close()
