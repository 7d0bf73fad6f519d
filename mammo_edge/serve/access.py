"""Who may talk to the node: TLS certificates and the calling AE titles it accepts.

- :class:`TlsFiles` (``--tls-cert``, ``--tls-key``, ``--tls-ca``): DICOM TLS on the node's
  port (PS3.15 B.1, the Basic TLS Secure Transport Connection Profile) and HTTPS on the
  HTTP port, with one certificate. With a CA, every client must present a certificate that
  CA signed (mutual TLS); without one, clients are not asked for a certificate.
- :class:`AllowedCaller` (``--allow-ae AET[@HOST]``): with at least one, an association
  is accepted only from a listed calling AE title, and from the listed host when one is
  given; every other one is rejected with A-ASSOCIATE-RJ (rejected permanent, calling AE
  title not recognised), as Orthanc does with ``DicomAlwaysAllowStore`` off.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

#: An AE title: 1 to 16 characters of the default repertoire, no backslash (PS3.5 6.2).
_AE_TITLE = re.compile(r"^[ -\[\]-~]{1,16}$")


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of ``--tls-cert``, ``--tls-key`` and ``--tls-ca``.

    Attributes:
        cert: the server's certificate (chain), PEM.
        key: its private key, PEM (unencrypted: a service starts unattended).
        ca: CA certificates client certificates must chain to; ``None``: no client
            certificate is asked for.
    """

    cert: Path
    key: Path
    ca: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        """The server side's context: TLS 1.2 or later, client certificates per :attr:`ca`.

        Raises:
            ssl.SSLError, OSError: a file is unreadable, not PEM, or the key does not
                match the certificate (the message says which).
        """
        context = _LazyHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=str(self.cert), keyfile=str(self.key))
        if self.ca is not None:
            context.load_verify_locations(cafile=str(self.ca))
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.verify_mode = ssl.CERT_NONE
        return context

    def uvicorn_options(self) -> dict:
        """The same settings as ``uvicorn.Config`` keyword arguments (HTTPS)."""
        options = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.ca is not None:
            options.update(ssl_ca_certs=str(self.ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options


def tls_files(cert: Path | None, key: Path | None, ca: Path | None) -> TlsFiles | None:
    """``--tls-cert``, ``--tls-key``, ``--tls-ca`` checked by loading them; ``None`` without.

    Raises:
        ValueError: a key without a certificate (or the reverse), a CA without both, or
            files that cannot be loaded (the message names them and why).
    """
    if cert is None and key is None:
        if ca is not None:
            raise ValueError("--tls-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise ValueError("give --tls-cert and --tls-key together")
    files = TlsFiles(Path(cert), Path(key), Path(ca) if ca is not None else None)
    try:
        files.server_context()
    except (ssl.SSLError, OSError) as error:
        named = f"--tls-cert {cert}, --tls-key {key}" + (f", --tls-ca {ca}" if ca else "")
        raise ValueError(
            f"cannot use {named}: {error} (PEM files expected, the key matching the certificate)"
        ) from None
    return files


class _LazyHandshakeContext(ssl.SSLContext):
    """A server context whose handshake runs in the association's thread, not the listener's.

    pynetdicom wraps each accepted socket in the thread that accepts connections; with
    Python's default the TLS handshake runs there too, so a client that connects and says
    nothing (or speaks plain TCP slowly) would hold up every other connection. Deferred,
    the handshake happens at the association's first read, under its network timeout.
    """

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, **options):
        return super().wrap_socket(
            sock, server_side=server_side, do_handshake_on_connect=False, **options
        )


@dataclass(frozen=True)
class AllowedCaller:
    """One ``--allow-ae AET[@HOST]``: a calling AE title, and optionally its host.

    Attributes:
        ae_title: the calling AE title, compared exactly (trailing spaces aside).
        host: the host as given; ``None``: any host.
        addresses: the IP addresses ``host`` resolved to when parsed.
    """

    ae_title: str
    host: str | None = None
    addresses: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> AllowedCaller:
        """Parse ``AET`` or ``AET@HOST``; a host name is resolved now.

        Raises:
            ValueError: not that form, an invalid AE title, or a host that does not resolve.
        """
        ae_title, _, host = text.strip().partition("@")
        ae_title = ae_title.strip()
        if not _AE_TITLE.match(ae_title) or not ae_title.strip():
            raise ValueError(
                f"--allow-ae must look like AET or AET@HOST (an AE title of 1-16 characters, "
                f"e.g. MODALITY1@10.0.0.7), got {text!r}"
            )
        if not host:
            return cls(ae_title)
        host = host.strip().strip("[]")
        try:
            found = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except socket.gaierror as error:
            raise ValueError(f"--allow-ae {text}: cannot resolve {host!r} ({error})") from None
        return cls(ae_title, host, frozenset(_normal(address) for address in found))

    def admits(self, ae_title: str, address: str) -> bool:
        """Whether a caller with this AE title, from this IP address, is this entry."""
        if ae_title.strip() != self.ae_title:
            return False
        return self.host is None or _normal(address) in self.addresses

    def __str__(self) -> str:
        return self.ae_title if self.host is None else f"{self.ae_title}@{self.host}"


def admitted(callers: tuple[AllowedCaller, ...], ae_title: str, address: str) -> bool:
    """Whether an association from ``ae_title`` at ``address`` is let in (no list: all are)."""
    return not callers or any(caller.admits(ae_title, address) for caller in callers)


def _normal(address: str) -> str:
    """An IP address in one spelling (an IPv4-mapped IPv6 address as IPv4)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped or parsed)
