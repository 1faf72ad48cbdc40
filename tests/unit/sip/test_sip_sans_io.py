"""The SIP package's public surface and error tree (sans-IO: tests/unit/test_sans_io.py)."""

import heron.sip


def test_sip_public_surface_is_declared() -> None:
    assert sorted(heron.sip.__all__) == sorted(set(heron.sip.__all__))
    for name in heron.sip.__all__:
        assert hasattr(heron.sip, name), name


def test_sip_error_tree() -> None:
    assert issubclass(heron.sip.SipLocalError, heron.sip.SipError)
    assert issubclass(heron.sip.SipRemoteError, heron.sip.SipError)
    for remote in (heron.sip.MalformedValue, heron.sip.BadRequest, heron.sip.UnanswerableMessage):
        assert issubclass(remote, heron.sip.SipRemoteError)
    assert issubclass(heron.sip.LimitExceeded, heron.sip.UnanswerableMessage)
    assert not issubclass(heron.sip.BadRequest, heron.sip.UnanswerableMessage)
