"""``mammo-edge serve``: a DICOM node for the PACS and/or an HTTP scoring service.

Needs the ``serve`` extra (``pip install "mammo-edge[serve]"``). The verb only parses its
options; :mod:`mammo_edge.serve.service` runs the service (docs/serve.md).
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.commands.options import (
    ModelOption,
    ThreadsOption,
    folder_out_option,
    pem_file_option,
)


class ServeEngine(str, Enum):
    local = "local"
    ray = "ray"


DicomPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="Listen for DICOM (C-ECHO, C-STORE) on this port; 0: a free one.",
        show_default=False,
    ),
]

AeTitleOption = Annotated[str, typer.Option(help="This node's AE title.")]

HttpPortOption = Annotated[
    int | None,
    typer.Option(
        min=0, max=65535, help="Serve HTTP on this port; 0: a free one.", show_default=False
    ),
]

HostOption = Annotated[
    str,
    typer.Option(help="Address to listen on (both protocols). 0.0.0.0 opens it to the network."),
]

SendToOption = Annotated[
    str | None,
    typer.Option(
        help="Send each SR and overlay by C-STORE to AET@HOST:PORT (retried until sent).",
        show_default=False,
    ),
]

OutOption = folder_out_option("Folder for results.jsonl, the spool, SRs and overlays.")

StableAfterOption = Annotated[
    float,
    typer.Option(
        min=0.0, help="Score a study when no instance of it has arrived for this many seconds."
    ),
]

EngineOption = Annotated[
    ServeEngine, typer.Option(help="local: this process. ray: HTTP scoring on Ray Serve replicas.")
]

TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="File holding the bearer token HTTP clients must send (Authorization: Bearer).",
        show_default=False,
    ),
]

ReplicasOption = Annotated[
    int, typer.Option(min=1, help="With --engine ray: Ray Serve replicas (one CPU each).")
]

TlsCertOption = pem_file_option(
    "PEM certificate: the DICOM port speaks DICOM TLS and HTTP becomes HTTPS."
)
TlsKeyOption = pem_file_option("PEM private key of --tls-cert (unencrypted).")
TlsCaOption = pem_file_option(
    "PEM CA certificate(s): clients (DICOM and HTTPS) must present a certificate it signed."
)

AllowAeOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="AET[@HOST]",
        help="Accept associations only from this calling AE title, and from HOST when given "
        "(AET or AET@HOST); repeat for each modality. Others are rejected and logged.",
        show_default=False,
    ),
]


def serve_command(
    dicom_port: DicomPortOption = None,
    ae_title: AeTitleOption = "MAMMOEDGE",
    http_port: HttpPortOption = None,
    host: HostOption = "127.0.0.1",
    send_to: SendToOption = None,
    out: OutOption = Path("mammo-edge-serve"),
    stable_after: StableAfterOption = 30.0,
    model: ModelOption = None,
    engine: EngineOption = ServeEngine.local,
    token_file: TokenFileOption = None,
    threads: ThreadsOption = None,
    replicas: ReplicasOption = 2,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    allow_ae: AllowAeOption = None,
) -> int:
    """Receive mammograms from the PACS (DICOM) or clients (HTTP) and score them.

    Results: one line per received instance in OUT/results.jsonl; per study a TID 1500
    structured report and heatmap overlays in OUT/<StudyInstanceUID>/, sent to --send-to.
    Research use only: not a medical device.
    """
    if dicom_port is None and http_port is None:
        raise typer.BadParameter("give --dicom-port, --http-port or both")
    if engine is ServeEngine.ray and http_port is None:
        raise typer.BadParameter("--engine ray scales the HTTP service: give --http-port")
    try:
        from mammo_edge.serve.outbox import Destination
        from mammo_edge.serve.service import ServeSettings, run
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise typer.BadParameter(
            f"serve needs its extra ({error.name} is missing): pip install 'mammo-edge[serve]'"
        ) from error
    try:
        destination = Destination.parse(send_to) if send_to else None
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    token = _read_token(token_file) if token_file is not None else None
    if allow_ae and dicom_port is None:
        raise typer.BadParameter("--allow-ae filters DICOM associations: give --dicom-port")
    try:
        from mammo_edge.serve.access import AllowedCaller, tls_files

        tls = tls_files(tls_cert, tls_key, tls_ca)
        allowed = tuple(AllowedCaller.parse(value) for value in allow_ae or ())
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    _log_to_stderr()
    settings = ServeSettings(
        out_dir=out,
        host=host,
        dicom_port=dicom_port,
        ae_title=ae_title,
        http_port=http_port,
        send_to=destination,
        stable_after=stable_after,
        model=model,
        engine=engine.value,
        token=token,
        threads=threads,
        replicas=replicas,
        tls=tls,
        allow_ae=allowed,
    )
    return run(settings)


def _read_token(token_file: Path) -> str:
    """The bearer token in ``--token-file``; a usage error when unreadable or empty."""
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read --token-file {token_file}: {error.strerror}"
        ) from error
    if not token:
        raise typer.BadParameter(f"--token-file {token_file} is empty")
    return token


def _log_to_stderr() -> None:
    """One line per study and per problem on standard error, with a UTC time stamp."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s mammo-edge serve: %(levelname)s: %(message)s")
    )
    logger = logging.getLogger("mammo_edge.serve")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
