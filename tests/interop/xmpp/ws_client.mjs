// An @xmpp/client (npm, not heron's) login over RFC 7395 WebSocket: sends one chat message,
// prints what it receives back as JSON lines, and stops on the first reply.
// Usage: node --experimental-websocket ws_client.mjs URL DOMAIN USER PASSWORD TO BODY
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, to, body] = process.argv.slice(2);
const xmpp = client({ service, domain, username, password, resource: "browser" });
const timer = setTimeout(() => {
  console.log(JSON.stringify({ event: "timeout" }));
  process.exit(2);
}, 15000);

xmpp.on("error", (error) => console.log(JSON.stringify({ event: "error", error: String(error) })));
xmpp.on("online", async (address) => {
  console.log(JSON.stringify({ event: "online", jid: address.toString() }));
  await xmpp.send(xml("presence"));
  await xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
});
xmpp.on("stanza", async (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    console.log(
      JSON.stringify({ event: "message", from: stanza.attrs.from, body: stanza.getChildText("body") }),
    );
    clearTimeout(timer);
    await xmpp.stop();
  }
});
xmpp.on("offline", () => console.log(JSON.stringify({ event: "offline" })));
xmpp.start().catch((error) => {
  console.log(JSON.stringify({ event: "failed", error: String(error) }));
  process.exit(1);
});
