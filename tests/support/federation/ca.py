"""The federation tests' CA: :class:`tests.support.certs.CertificateAuthority`, with the
certificates it issues written as the PEM files servers take (RFC 6125, RFC 7590, XEP-0178).

Prosody, ejabberd and heron verify their peers against ``cafile``; a certificate
:meth:`TestCa.issue` writes for a domain carries that domain as DNS-ID and SRV-ID
(``_xmpp-server.DOMAIN``, RFC 4985), so each server authenticates the other with SASL
EXTERNAL. A certificate for another name, or an expired one, makes them fall back to
dialback (XEP-0220).

XmppAddr identifiers (RFC 6120 §13.7.1.4) are left out unless asked for: ejabberd 23.01's
``xmpp_stream_pkix:get_domains_from_san`` crashes the inbound stream on a domain XmppAddr
(``badarg`` in ``++``, a binary where a list belongs) when it checks a peer for SASL EXTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tests.support.certs import CertificateAuthority, srv_id, xmpp_addr


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its key as PEM files, as servers take them."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TestCa:
    """A root CA whose PEM certificate is ``cafile``; :meth:`issue` signs leaf certificates."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    cafile: Path
    authority: CertificateAuthority

    def issue(
        self,
        domain: str,
        *,
        dns_ids: tuple[str, ...] | None = None,
        srv_ids: tuple[str, ...] | None = None,
        xmpp_addrs: tuple[str, ...] = (),
        expired: bool = False,
    ) -> CertFiles:
        """A certificate with ``domain`` as CN. DNS-IDs default to ``domain`` and SRV-IDs to
        ``_xmpp-server.domain`` (``()`` leaves a kind out); XmppAddrs to none (see above)."""
        dns_ids = (domain,) if dns_ids is None else dns_ids
        srv_ids = (f"_xmpp-server.{domain}",) if srv_ids is None else srv_ids
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_ids]
        names += [srv_id(name) for name in srv_ids]
        names += [xmpp_addr(address) for address in xmpp_addrs]
        issued = self.authority.issue(names, common_name=domain, expired=expired)
        stem = f"{domain}{'-expired' if expired else ''}-{issued.certificate.serial_number:x}"
        cert, key = issued.write(self.directory, stem)
        return CertFiles(cert, key)


def make_ca(directory: Path, name: str = "heron federation test CA") -> TestCa:
    """A fresh root CA in ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = CertificateAuthority(name)
    return TestCa(directory, authority.write(directory / "ca.crt"), authority)
