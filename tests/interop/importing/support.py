"""What the import tests share: the users the sources hold, the heron that imports them and
serves, and an XMPP login with one SASL mechanism."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.interop.sip.support import SipServer, register, sip_settings
from tests.interop.turn.support import (
    TurnServer,
    assert_all_echoed,
    coturn_peer,
    relay_window,
    uclient,
)
from tests.interop.xmpp.support import TIMEOUT, Client
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, heron_cli, merge, provision, serving

DOMAIN = "localhost"
COTURN_USERS = {"tina": "turn pw"}
# kamctl 5.6 hashes only a password's first word into HA1 ("a b" as "a"): none have spaces.
KAMAILIO_USERS = {"sam": "sip-pw"}
KAMAILIO_HASHED = {"hal": "hashed-sip-pw"}
PROSODY_USERS = {"pat": "xmpp pw", "quinn": "other xmpp pw"}


@dataclass
class Imported:
    heron: RunningHeron
    turn: TurnServer
    sip: SipServer
    xmpp_port: int
    certificate: Path
    import_output: str


async def xmpp_login(
    jid: str, password: str, port: int, context: ssl.SSLContext | None, mechanism: str
) -> Client | None:
    """``jid`` logged in with ``mechanism`` only (STARTTLS when ``context`` is given, plain
    TCP otherwise); None if the server refused the credentials."""
    client = Client(jid, password)
    client.plugin["feature_mechanisms"].use_mech = mechanism
    # Prosody on loopback without TLS: slixmpp only runs SCRAM there when told to.
    client.plugin["feature_mechanisms"].unencrypted_scram = context is None
    client.enable_plaintext = context is None
    client.enable_starttls = context is not None
    client.enable_direct_tls = False
    if context is not None:
        client.ssl_context = context
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(logged_in: bool) -> None:
        if not outcome.done():
            outcome.set_result(logged_in)

    client.add_event_handler("session_start", lambda _: settle(True))
    client.add_event_handler("failed_auth", lambda _: settle(False))
    client.connect("127.0.0.1", port)
    if await asyncio.wait_for(outcome, TIMEOUT):
        return client
    client.abort()
    return None


def assert_relays(imported: Imported, user: str, password: str) -> None:
    """turnutils_uclient allocates as ``user`` and its packets come back through heron."""
    with coturn_peer() as echo:
        run = uclient(imported.turn, echo, "-u", user, "-w", password, "-c", "-n", "5", "-l", "120")
    assert_all_echoed(run, 5, imported.turn)


def assert_registers(imported: Imported, directory: Path, user: str, password: str) -> None:
    """sipp registers ``user``, answering heron's digest challenge."""
    run = register(imported.sip, directory, user, password, port=free_port())
    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(401, "REGISTER"), (200, "REGISTER")], run.explain()


@contextmanager
def importing_heron(base: Path, imports: Sequence[Sequence[str]]) -> Iterator[Imported]:
    """heron with TURN, SIP and XMPP on loopback, having run ``heron import ARGS`` for each
    of ``imports``, serving; its log must end clean."""
    directory = base / "heron"
    directory.mkdir()
    turn_port, sip_port, sip_tls_port, xmpp_port = (free_port() for _ in range(4))
    low, high = relay_window()
    settings = merge(
        merge(base_settings(directory), sip_settings(sip_port, sip_tls_port)),
        {
            "turn": {
                "enabled": True,
                "listen": [f"127.0.0.1:{turn_port}"],
                "tls_listen": [],
                "relay_addresses": ["127.0.0.1"],
                "relay_port_min": low,
                "relay_port_max": high,
                "allowed_peer_ranges": ["127.0.0.0/8"],
            },
            "xmpp": {
                "enabled": True,
                "listen": [f"127.0.0.1:{xmpp_port}"],
                "tls_listen": [],
                "s2s_listen": [],
                "s2s_tls_listen": [],
            },
        },
    )
    config = directory / "heron.toml"
    config.write_text(render_toml(settings))
    provision(config, {})
    output = ""
    for arguments in imports:
        done = heron_cli(config, "import", *arguments)
        assert done.returncode == 0, done.stdout + done.stderr
        output += done.stdout
    certificate = directory / "var" / "tls" / "heron.crt"
    with serving(config) as heron:
        web_port = int(re.findall(r"web listening on https://[^:]+:(\d+)/", "".join(heron.log))[0])
        yield Imported(
            heron,
            TurnServer(heron, turn_port, 0, (low, high), certificate),
            SipServer(heron, directory, sip_port, sip_tls_port, web_port, certificate),
            xmpp_port,
            certificate,
            output,
        )
    log = "".join(heron.log)
    assert heron.process.returncode == 0, log
    assert "Traceback" not in log, log
