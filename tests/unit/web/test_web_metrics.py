"""/metrics: every counter view in the Prometheus text format, and who may read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from heron.web.metrics import _loopback
from tests.unit.web.conftest import ADMIN, USER, Site

MakeSite = Callable[..., Awaitable[Site]]


async def test_metrics_carry_counters_gauges_and_view_sizes(make_site: MakeSite) -> None:
    site = await make_site()
    site.views["sip.counters"] = lambda: [{"requests": 12, "bindings": 2, "connections": 1}]
    site.views["turn.counters"] = lambda: [{"allocations_active": 3, "bytes_relayed": 4096}]
    site.views["xmpp.counters"] = lambda: [{"stanzas": 9, "sessions": 1, "rooms": 1}]
    site.views["sip.registrations"] = lambda: [{"aor": "a"}, {"aor": "b"}]
    site.views["xmpp.sessions"] = lambda: [{"jid": "roland@example.org/x"}]
    response = await site.browser().request("GET", "/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    expected = {
        "heron_sip_requests": ("counter", 12),
        "heron_sip_bindings": ("gauge", 2),
        "heron_sip_connections": ("gauge", 1),
        "heron_turn_allocations_active": ("gauge", 3),
        "heron_turn_bytes_relayed": ("counter", 4096),
        "heron_xmpp_stanzas": ("counter", 9),
        "heron_xmpp_sessions": ("gauge", 1),
        "heron_xmpp_rooms": ("gauge", 1),
    }
    for name, (kind, value) in expected.items():
        assert families[name].type == kind, name
        assert families[name].samples[0].value == value, name
    sizes = {s.labels["view"]: s.value for s in families["heron_view_rows"].samples}
    assert sizes == {"sip.registrations": 2, "xmpp.sessions": 1}
    assert families["heron_web_sessions"].samples[0].value == 0
    assert "process_cpu_seconds" in families


async def test_metrics_counters_end_in_total(make_site: MakeSite) -> None:
    site = await make_site()
    site.views["sip.counters"] = lambda: [{"requests": 12}]
    text = await (await site.browser().request("GET", "/metrics")).text()
    assert "heron_sip_requests_total 12.0" in text


async def test_turn_drops_are_one_family_labelled_by_reason(make_site: MakeSite) -> None:
    site = await make_site()
    site.views["turn.counters"] = lambda: [
        {
            "packets_relayed": 10,
            "packets_dropped_no_allocation": 3,
            "packets_dropped_send_failed": 0,
        }
    ]
    text = await (await site.browser().request("GET", "/metrics")).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    dropped = families["heron_turn_packets_dropped"]
    assert dropped.type == "counter"
    assert {s.labels["reason"]: s.value for s in dropped.samples if s.name.endswith("_total")} == {
        "no_allocation": 3,
        "send_failed": 0,
    }
    assert 'heron_turn_packets_dropped_total{reason="no_allocation"} 3.0' in text
    assert "heron_turn_packets_dropped_no_allocation" not in text


async def test_metrics_off_has_no_route(make_site: MakeSite) -> None:
    site = await make_site(metrics="off")
    assert (await site.browser().request("GET", "/metrics")).status == 404


async def test_metrics_admin_needs_an_admin_session(make_site: MakeSite) -> None:
    site = await make_site(metrics="admin")
    assert (await site.browser().request("GET", "/metrics")).status == 403
    user = site.browser()
    await user.login_ok(*USER)
    assert (await user.request("GET", "/metrics")).status == 403
    admin = site.browser()
    await admin.login_ok(*ADMIN)
    assert (await admin.request("GET", "/metrics")).status == 200


@pytest.mark.parametrize(
    ("remote", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("::ffff:192.0.2.1", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_metrics_localhost_means_loopback_sources_only(remote: str | None, allowed: bool) -> None:
    assert _loopback(remote) is allowed


async def test_media_counters_are_gauges_and_families_by_side_and_reason(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    site.views["media.counters"] = lambda: [
        {
            "calls": 2,
            "ports": 8,
            "timeouts": 1,
            "packets_from_caller": 50,
            "packets_from_callee": 40,
            "bytes_from_caller": 5000,
            "bytes_from_callee": 4000,
            "packets_dropped_srtp": 3,
            "packets_dropped_source": 0,
        }
    ]
    site.views["media.calls"] = lambda: [{"call_id": "a"}, {"call_id": "b"}]
    text = await (await site.browser().request("GET", "/metrics")).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["heron_media_calls"].type == "gauge"
    assert families["heron_media_ports"].samples[0].value == 8
    assert families["heron_media_timeouts"].type == "counter"
    assert 'heron_media_packets_total{side="caller"} 50.0' in text
    assert 'heron_media_bytes_total{side="callee"} 4000.0' in text
    assert 'heron_media_packets_dropped_total{reason="srtp"} 3.0' in text
    sizes = {s.labels["view"]: s.value for s in families["heron_view_rows"].samples}
    assert sizes["media.calls"] == 2
