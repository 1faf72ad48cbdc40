"""Issue 17: one second after ``heron user passwd``, TURN still accepted the old password
and refused the new one, from keys its own cache kept for 30 s. TURN now takes keys from
the account cache every protocol shares, which the change announced by the CLI empties at
once: the very next Allocate sees the new password."""

from __future__ import annotations

from tests.security.support import USERS, Target
from tests.security.turn_wire import ALLOCATE_REQUEST, SUCCESS, RawTurnClient, allocate, turn_udp


def test_the_next_allocate_after_a_password_change_takes_only_the_new_password(
    heron: Target,
) -> None:
    old, new = USERS["roland"], "roland-changed"
    with RawTurnClient(turn_udp(heron), "roland", old) as client:
        assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS  # roland's keys cached

    changed = heron.heron.cli("user", "passwd", "roland@localhost", "--password", new)
    assert changed.returncode == 0, changed.stderr

    with RawTurnClient(turn_udp(heron), "roland", old) as client:
        refused = allocate(client)
        assert refused.error == 401, refused
    with RawTurnClient(turn_udp(heron), "roland", new) as client:
        granted = allocate(client)
        assert granted.kind == ALLOCATE_REQUEST | SUCCESS, granted
