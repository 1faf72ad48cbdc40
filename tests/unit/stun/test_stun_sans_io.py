"""The STUN package's public surface (sans-IO: tests/unit/test_sans_io.py)."""

import heron.stun


def test_stun_public_surface_is_declared() -> None:
    assert sorted(heron.stun.__all__) == sorted(set(heron.stun.__all__))
    for name in heron.stun.__all__:
        assert hasattr(heron.stun, name), name
