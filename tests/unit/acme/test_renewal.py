"""When heron orders a certificate: missing, self-signed, short of a name, or due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from heron.acme.renewal import renewal_reason
from heron.tls import CertificateInfo

NOW = datetime(2026, 12, 8, tzinfo=UTC)
NAMES = ("falcot.com", "conference.falcot.com")
MONTH = timedelta(days=30)


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (None, "no certificate yet"),
        (CertificateInfo(NAMES, NOW + 3 * MONTH, self_signed=True), "self-signed"),
        (
            CertificateInfo(("falcot.com",), NOW + 3 * MONTH),
            "does not cover conference.falcot.com",
        ),
        (CertificateInfo(NAMES, NOW + MONTH), "expires on 2027-01-07"),
        (CertificateInfo(NAMES, NOW - MONTH), "expires on 2026-11-08"),
        (CertificateInfo(("*.falcot.com", "falcot.com"), NOW + MONTH + timedelta(seconds=1)), None),
        (CertificateInfo(NAMES, NOW + 3 * MONTH), None),
    ],
)
def test_a_certificate_is_ordered_when_it_will_not_do(
    info: CertificateInfo | None, reason: str | None
) -> None:
    found = renewal_reason(info, NAMES, NOW, MONTH)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found
