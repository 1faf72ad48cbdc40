"""Certificate names for a server-to-server peer (RFC 6125 §6 as RFC 6120 §13.7.1.2 and
RFC 7590 §3.2 apply it), on certificates a test CA issues."""

from __future__ import annotations

import pytest
from cryptography import x509

from heron.xmpp.s2s.identity import (
    MAX_CERTIFICATE,
    PresentedIds,
    _der_string,
    certificate_names_domain,
    presented_ids,
)
from tests.support.certs import CertificateAuthority, der_string, srv_id, xmpp_addr

DOMAIN = "example.test"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def test_rfc6125_6_4_1_a_dns_id_names_its_domain_whatever_the_case(
    ca: CertificateAuthority,
) -> None:
    der = ca.issue([x509.DNSName("Example.Test")]).der
    assert certificate_names_domain(der, DOMAIN)
    assert certificate_names_domain(der, "EXAMPLE.test.")
    assert not certificate_names_domain(der, "other.test")
    assert not certificate_names_domain(der, "sub.example.test")


def test_rfc6125_6_4_3_a_wildcard_stands_for_one_whole_leftmost_label(
    ca: CertificateAuthority,
) -> None:
    der = ca.issue([x509.DNSName("*.example.test")]).der
    assert certificate_names_domain(der, "conference.example.test")  # the MUC subdomain
    assert not certificate_names_domain(der, DOMAIN)
    assert not certificate_names_domain(der, "a.b.example.test")
    for pattern in ("*.test", "f*.example.test", "a.*.example.test", "*"):
        assert not certificate_names_domain(ca.issue([x509.DNSName(pattern)]).der, "x.test")
    assert not certificate_names_domain(
        ca.issue([x509.DNSName("f*.example.test")]).der, "fo.example.test"
    )


def test_rfc7590_3_2_an_srv_id_for_xmpp_server_names_the_domain(ca: CertificateAuthority) -> None:
    der = ca.issue([srv_id("_xmpp-server.example.test")]).der
    assert presented_ids(der) == PresentedIds(srv=("_xmpp-server.example.test",))
    assert certificate_names_domain(der, DOMAIN)
    assert not certificate_names_domain(der, "other.test")
    client_only = ca.issue([srv_id("_xmpp-client.example.test")]).der
    assert not certificate_names_domain(client_only, DOMAIN)


def test_rfc6120_13_7_1_4_an_xmppaddr_names_the_domain(ca: CertificateAuthority) -> None:
    der = ca.issue([xmpp_addr("example.test")]).der
    assert certificate_names_domain(der, DOMAIN)
    assert not certificate_names_domain(der, "other.test")


def test_rfc6125_6_4_4_the_common_name_counts_only_without_subject_alt_names(
    ca: CertificateAuthority,
) -> None:
    assert certificate_names_domain(ca.issue(common_name=DOMAIN).der, DOMAIN)
    with_san = ca.issue([x509.DNSName("other.test")], common_name=DOMAIN).der
    assert not certificate_names_domain(with_san, DOMAIN)
    with_uri = ca.issue([x509.UniformResourceIdentifier("xmpp:x.test")], common_name=DOMAIN).der
    assert not certificate_names_domain(with_uri, DOMAIN)
    with_email = ca.issue([x509.RFC822Name("admin@example.test")], common_name=DOMAIN).der
    assert certificate_names_domain(with_email, DOMAIN)


def test_names_are_read_whoever_signed_and_whenever(ca: CertificateAuthority) -> None:
    """Trust is TLS's question (heron.peer_tls): names are read from any certificate."""
    names = [x509.DNSName(DOMAIN)]
    assert certificate_names_domain(ca.issue(names, self_signed=True).der, DOMAIN)
    assert certificate_names_domain(ca.issue(names, expired=True).der, DOMAIN)
    assert not certificate_names_domain(ca.issue([x509.DNSName("other.test")]).der, DOMAIN)


def test_international_domains_compare_as_a_labels(ca: CertificateAuthority) -> None:
    der = ca.issue([x509.DNSName("xn--bcher-kva.test")]).der
    assert certificate_names_domain(der, "bücher.test")


@pytest.mark.parametrize(
    "value",
    [
        b"\x13\x0cexample.test",  # a PrintableString, not a UTF8String
        b"\x0c\x02\xff\xfe",  # not UTF-8
        b"\x30\x0e\x0c\x0cexample.test",  # a SEQUENCE holding the name
    ],
)
def test_an_xmppaddr_that_is_no_utf8string_names_nothing(
    ca: CertificateAuthority, value: bytes
) -> None:
    der = ca.issue([x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5"), value)]).der
    assert not certificate_names_domain(der, DOMAIN)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x0c",
        b"\x0c\x05abc",  # shorter than it says
        b"\x0c\x02abc",  # longer than it says
        b"\x0c\x85\x00\x00\x00\x00\x0c",  # a length of five bytes
        b"\x0c\x80",  # an indefinite length
        b"\x0c\x82\x00",  # a length cut short
    ],
)
def test_der_strings_that_do_not_fill_their_value_read_as_nothing(value: bytes) -> None:
    """cryptography refuses to build such values; a peer's certificate is not so polite."""
    assert _der_string(value, 0x0C) == ""


def test_a_long_form_length_is_read(ca: CertificateAuthority) -> None:
    name = "a" * 60 + "." + "b" * 60 + ".test"
    der = ca.issue(
        [x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5"), der_string(0x0C, name))]
    ).der
    assert certificate_names_domain(der, name)


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01", b"not a certificate", b"\x30" * 70_000])
def test_what_is_not_a_certificate_names_nothing(der: bytes) -> None:
    assert presented_ids(der) == PresentedIds()
    assert not certificate_names_domain(der, DOMAIN)


def test_a_certificate_over_the_size_limit_is_not_parsed(ca: CertificateAuthority) -> None:
    names = [x509.DNSName(f"h{i}.example.test") for i in range(4000)] + [x509.DNSName(DOMAIN)]
    der = ca.issue(names).der
    assert len(der) > MAX_CERTIFICATE
    assert not certificate_names_domain(der, DOMAIN)


@pytest.mark.parametrize("domain", ["", ".", "a..b", "x" * 300])
def test_a_domain_that_is_no_name_matches_nothing(ca: CertificateAuthority, domain: str) -> None:
    assert not certificate_names_domain(ca.issue([x509.DNSName("*.example.test")]).der, domain)
