"""Plain HTTP on the shared port: a 301 to the same path over HTTPS on heron's own host."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heron.config import Config
from heron.mux import Service
from heron.mux.redirect import MAX_TARGET, redirect
from heron.mux.server import server_names


def _location(answer: bytes) -> str:
    head = answer.decode("ascii")
    assert head.startswith("HTTP/1.1 301 Moved Permanently\r\n")
    assert head.endswith("\r\n\r\n")
    (location,) = [line for line in head.split("\r\n") if line.startswith("Location: ")]
    return location.removeprefix("Location: ")


def test_the_path_and_query_are_kept_and_port_443_is_left_implicit() -> None:
    head = b"GET /phone?call=roland HTTP/1.1\r\nHost: falcot.com\r\n"
    assert _location(redirect(head, "falcot.com", 443)) == "https://falcot.com/phone?call=roland"


def test_another_port_is_named() -> None:
    assert _location(redirect(b"HEAD / HTTP/1.0\r\n", "falcot.com", 8443)) == (
        "https://falcot.com:8443/"
    )


def test_the_host_is_heron_s_whatever_the_client_says() -> None:
    head = b"GET //evil.example/x HTTP/1.1\r\nHost: evil.example\r\n"
    assert _location(redirect(head, "falcot.com", 443)) == "https://falcot.com//evil.example/x"


def test_an_incomplete_or_absolute_form_request_line_goes_to_the_root() -> None:
    for head in (b"GET /pho", b"GET http://evil.example/ HTTP/1.1\r\n", b"OPTIONS * HTTP/1.1\r\n"):
        assert _location(redirect(head, "falcot.com", 443)) == "https://falcot.com/"


def test_a_target_longer_than_the_bound_goes_to_the_root() -> None:
    head = b"GET /" + b"a" * MAX_TARGET + b" HTTP/1.1\r\n"
    assert _location(redirect(head, "falcot.com", 443)) == "https://falcot.com/"


@given(st.binary(max_size=300))
def test_no_request_can_add_a_header_or_end_the_answer_early(head: bytes) -> None:
    answer = redirect(head, "falcot.com", 443)
    assert answer.count(b"\r\n\r\n") == 1 and answer.endswith(b"\r\n\r\n")
    assert answer.count(b"\r\n") == redirect(b"", "falcot.com", 443).count(b"\r\n")
    assert _location(answer).startswith("https://falcot.com/")


def test_sni_names_the_sip_domain_only_when_it_is_not_the_host_name() -> None:
    assert server_names(Config(domain="falcot.com")) == {}
    split = Config.model_validate({"domain": "falcot.com", "sip": {"domain": "SIP.falcot.com"}})
    assert server_names(split) == {"sip.falcot.com": Service.SIP}


def test_configured_server_names_are_added_and_win() -> None:
    config = Config.model_validate(
        {
            "domain": "falcot.com",
            "sip": {"domain": "sip.falcot.com"},
            "mux": {"sni": {"turn.falcot.com": "turn", "sip.falcot.com": "web"}},
        }
    )
    assert server_names(config) == {"turn.falcot.com": Service.TURN, "sip.falcot.com": Service.WEB}
