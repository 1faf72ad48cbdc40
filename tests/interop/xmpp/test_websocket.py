"""RFC 7395 XMPP over WebSocket at /xmpp-websocket, with @xmpp/client (npm) on Node."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.interop.xmpp.support import DOMAIN, PASSWORD, TIMEOUT, XmppServer, logged_in
from tests.support.tools import missing, require_tool

ROOT = Path(__file__).parents[3]
SCRIPT = Path(__file__).with_name("ws_client.mjs")


async def test_rfc7395_websocket_client_logs_in_and_chats_with_a_tcp_client(
    shared_xmpp: XmppServer,
) -> None:
    node = require_tool("node", "nodejs")
    if not (ROOT / "node_modules" / "@xmpp" / "client").is_dir():
        missing("@xmpp/client is missing: `make test-deps` runs npm install")
    async with logged_in(shared_xmpp, "niaj") as (niaj,):
        process = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",
            str(SCRIPT),
            f"wss://localhost:{shared_xmpp.web_port}/xmpp-websocket",
            DOMAIN,
            "mallory",
            PASSWORD,
            f"niaj@{DOMAIN}",
            "hello from a browser stack",
            cwd=ROOT,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": str(shared_xmpp.certificate)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        received = await niaj.next_message("hello from a browser stack")
        assert received["from"] == f"mallory@{DOMAIN}/browser"
        niaj.send_message(mto=received["from"], mbody="hello back", mtype="chat")
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    events = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    assert {"event": "online", "jid": f"mallory@{DOMAIN}/browser"} in events, stderr.decode()
    assert {
        "event": "message",
        "from": f"niaj@{DOMAIN}/test",
        "body": "hello back",
    } in events
    assert process.returncode == 0
