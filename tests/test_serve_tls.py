"""The node's doors: DICOM TLS and HTTPS with client certificates, and the AE allow list.

The test makes a CA, a server certificate for 127.0.0.1 and a client certificate (and a
client certificate from another CA) with the ``cryptography`` package, starts one
``serve`` process with ``--tls-cert --tls-key --tls-ca`` and two ``--allow-ae`` entries, and
talks to it with pynetdicom and httpx.
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import ssl
import time
from pathlib import Path

import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")
pytest.importorskip("cryptography", reason="making test certificates needs cryptography")

from pydicom.uid import generate_uid  # noqa: E402

from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    mammogram_dataset,
    read_pgm,
    read_results,
    start_serve,
)

ALLOWED = "TESTSCU"
HOST_BOUND = "ELSEWHERE"  # allowed only from an address the test never uses


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject: str, key, issuer=None, issuer_key=None, *, ca=False, usage=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(folder: Path, name: str, certificate, key) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """``ca``, ``server``/``server_key``, ``client``/``client_key``, ``rogue``/``rogue_key``."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = _key(), _key()
    ca = _certificate("mammo-edge test CA", ca_key, ca=True)
    rogue_ca = _certificate("another CA", rogue_ca_key, ca=True)
    files = {"ca": _write(folder, "ca", ca, ca_key)[0]}
    for name, issuer, issuer_key, usage in (
        ("server", ca, ca_key, "server"),
        ("client", ca, ca_key, "client"),
        ("rogue", rogue_ca, rogue_ca_key, "client"),
    ):
        key = _key()
        certificate = _certificate(f"{name}.test", key, issuer, issuer_key, usage=usage)
        files[name], files[f"{name}_key"] = _write(folder, name, certificate, key)
    return files


@pytest.fixture(scope="module")
def node(tmp_path_factory, pki):
    out = tmp_path_factory.mktemp("tls") / "out"
    process, info = start_serve(
        out,
        *("--dicom-port", "0", "--http-port", "0", "--stable-after", "0.2"),
        *("--tls-cert", str(pki["server"]), "--tls-key", str(pki["server_key"])),
        *("--tls-ca", str(pki["ca"])),
        *("--allow-ae", ALLOWED, "--allow-ae", f"{HOST_BOUND}@10.255.255.1"),
    )
    yield out, info
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0


def client_context(pki, certificate: str | None = "client") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki["ca"]))
    if certificate is not None:
        context.load_cert_chain(str(pki[certificate]), str(pki[f"{certificate}_key"]))
    return context


def associate(info, *, ae_title: str = ALLOWED, tls: ssl.SSLContext | None = None, dataset=None):
    """An association to the node (C-ECHO, plus the dataset's storage context if given)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
    ae.add_requested_context(Verification)
    if dataset is not None:
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    tls_args = (tls, "127.0.0.1") if tls is not None else None
    return ae.associate("127.0.0.1", info["dicom_port"], ae_title="MAMMOEDGE", tls_args=tls_args)


def test_tls_store_with_client_certificate_succeeds(node, pki):
    out, info = node
    study = generate_uid()
    dataset = mammogram_dataset(read_pgm(EXAMPLES / "mdb003.pgm")[::4, ::4].copy(), study_uid=study)
    association = associate(info, tls=client_context(pki), dataset=dataset)
    assert association.is_established
    try:
        assert association.send_c_store(dataset).Status == 0x0000
    finally:
        association.release()
    deadline = time.monotonic() + 60
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = [row for row in read_results(out) if row["study_instance_uid"] == study]
        time.sleep(0.05)
    assert [row["status"] for row in rows] == ["ok"]


@pytest.mark.parametrize("certificate", [None, "rogue"], ids=["no-client-cert", "other-ca"])
def test_tls_without_a_certificate_of_the_ca_is_refused(node, pki, certificate):
    association = associate(node[1], tls=client_context(pki, certificate))
    assert not association.is_established
    association.abort()


def test_plain_tcp_to_the_tls_port_fails(node):
    association = associate(node[1])
    assert not association.is_established
    association.abort()


@pytest.mark.parametrize("ae_title", ["INTRUDER", HOST_BOUND], ids=["unlisted", "wrong-host"])
def test_association_from_an_ae_not_allowed_is_rejected_and_logged(node, pki, ae_title):
    out, info = node
    association = associate(info, ae_title=ae_title, tls=client_context(pki))
    assert association.is_rejected and not association.is_established
    log = Path(str(out) + ".log").read_text()
    assert f"refused an association from {ae_title}@127.0.0.1" in log


def test_allowed_ae_over_tls_echoes(node, pki):
    association = associate(node[1], tls=client_context(pki))
    assert association.is_established
    assert association.send_c_echo().Status == 0x0000
    association.release()


def test_a_silent_client_does_not_hold_up_the_others(node, pki):
    """A connection that never starts its handshake must not block the listener."""
    import socket

    with socket.create_connection(("127.0.0.1", node[1]["dicom_port"]), timeout=10):
        association = associate(node[1], tls=client_context(pki))
        assert association.is_established
        association.release()


def test_https_health_answers_over_tls_with_a_client_certificate(node, pki):
    import httpx

    url = f"https://127.0.0.1:{node[1]['http_port']}/healthz"
    answer = httpx.get(url, verify=client_context(pki), timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        httpx.get(url, verify=client_context(pki, None), timeout=10)
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https", "http"), timeout=10)


def test_tls_files_and_allow_list_are_checked(pki):
    from mammo_edge.serve.access import AllowedCaller, admitted, tls_files

    assert tls_files(None, None, None) is None
    assert tls_files(pki["server"], pki["server_key"], None).server_context().verify_mode == (
        ssl.CERT_NONE
    )
    assert tls_files(pki["server"], pki["server_key"], pki["ca"]).server_context().verify_mode == (
        ssl.CERT_REQUIRED
    )
    for arguments in ((pki["server"], None, None), (None, None, pki["ca"])):
        with pytest.raises(ValueError, match="--tls"):
            tls_files(*arguments)
    with pytest.raises(ValueError, match="cannot use"):
        tls_files(pki["server"], pki["client_key"], None)  # a key of another certificate
    callers = (AllowedCaller.parse("MODALITY"), AllowedCaller.parse("CT1@127.0.0.1"))
    assert admitted(callers, "MODALITY", "10.0.0.9")
    assert admitted(callers, "CT1", "::ffff:127.0.0.1")
    assert not admitted(callers, "CT1", "10.0.0.9")
    assert not admitted(callers, "modality", "10.0.0.9")
    assert admitted((), "ANY", "10.0.0.9")
    for bad in ("", "A" * 17, "BACK\\SLASH", "@127.0.0.1"):
        with pytest.raises(ValueError, match="--allow-ae"):
            AllowedCaller.parse(bad)
