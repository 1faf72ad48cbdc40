"""When the certificate needs the CA: the rule, without a clock of its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from heron.tls import CertificateInfo

__all__ = ["CHECK_EVERY", "RETRY_AFTER", "renewal_reason"]

CHECK_EVERY = timedelta(days=1)
"""How often the certificate is looked at: daily, as certbot's timer runs twice a day
for a renewal window of 30 days."""
RETRY_AFTER = timedelta(hours=1)
"""After a failed order: the CA's rate limits (Let's Encrypt: 5 failed validations per
name and hour) make quicker retries pointless."""


def renewal_reason(
    info: CertificateInfo | None, names: Sequence[str], now: datetime, renew_before: timedelta
) -> str | None:
    """Why a certificate must be ordered now, or None while the one served will do."""
    if info is None:
        return "no certificate yet"
    if info.self_signed:
        return "the certificate is self-signed"
    missing = [name for name in names if not info.covers(name)]
    if missing:
        return f"the certificate does not cover {', '.join(missing)}"
    if info.not_after - now <= renew_before:
        return f"the certificate expires on {info.not_after:%Y-%m-%d}"
    return None
