"""Where media may go: public addresses, allowed networks, and heron's own TURN relays."""

from __future__ import annotations

import ipaddress

from heron.destinations import Destinations
from heron.media.call import Policy
from heron.media.component import media_policy

OWN = "198.51.100.19"
RELAYS = range(49152, 65536)


def policy(allowed: list[str] | None = None, relays: range | None = RELAYS) -> Policy:
    networks = [ipaddress.ip_network(n) for n in allowed or []]
    return media_policy(Destinations(allowed=networks, own=[OWN]), relays)


def test_public_addresses_are_allowed_internal_ones_are_not() -> None:
    allowed = policy()
    assert allowed(("93.184.216.34", 4000))
    for host in ("127.0.0.1", "10.1.2.3", "192.168.1.20", "169.254.169.254", "::1", "fd00::2"):
        assert not allowed((host, 4000)), host


def test_allowed_destinations_open_a_private_lan() -> None:
    allowed = policy(["192.168.1.0/24"])
    assert allowed(("192.168.1.20", 4000)) and not allowed(("192.168.2.20", 4000))


def test_heron_s_own_address_only_from_its_turn_relay_ports() -> None:
    allowed = policy()
    assert allowed((OWN, 50000))  # a web phone relayed by heron's TURN
    assert not allowed((OWN, 5060)) and not allowed((OWN, 8443))
    assert not policy(relays=None)((OWN, 50000))  # TURN off: no relay of ours
