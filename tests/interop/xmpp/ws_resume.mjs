// An @xmpp/client (npm, not heron's) session over RFC 7395 WebSocket that enables XEP-0198
// and resumes after its WebSocket is dropped without an XMPP <close/>. It prints JSON lines
// (online, enabled, message, cut, resumed) and takes commands on stdin, one a line:
//   cut     drop the WebSocket (no <close/>): heron must keep the session for a resume
//   resume  connect again; @xmpp/stream-management sends <resume/>
//   stop    close the stream and exit
// Usage: node --experimental-websocket ws_resume.mjs URL DOMAIN USER PASSWORD
import { createInterface } from "node:readline";
import { client, xml } from "@xmpp/client";

const [service, domain, username, password] = process.argv.slice(2);
const xmpp = client({ service, domain, username, password, resource: "browser" });
const print = (object) => console.log(JSON.stringify(object));
const timer = setTimeout(() => {
  print({ event: "timeout" });
  process.exit(2);
}, 30000);

xmpp.reconnect.stop(); // the test says when to come back
xmpp.on("error", (error) => print({ event: "error", error: String(error) }));
xmpp.once("online", async (address) => {
  print({ event: "online", jid: address.toString() });
  await xmpp.send(xml("presence"));
});
xmpp.on("nonza", (element) => {
  if (element.is("enabled", "urn:xmpp:sm:3")) print({ event: "enabled", resume: element.attrs.resume });
});
xmpp.streamManagement.on("resumed", () => print({ event: "resumed" }));
xmpp.on("status", (status) => {
  if (status === "disconnect") print({ event: "cut" });
});
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")) {
    print({ event: "message", body: stanza.getChildText("body") });
  }
});

createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line === "cut") {
    xmpp.socket.socket.close(); // the WebSocket only: no <close/> for the XMPP stream
  } else if (line === "resume") {
    await xmpp.reconnect.reconnect();
  } else if (line === "stop") {
    clearTimeout(timer);
    await xmpp.stop();
    process.exit(0);
  }
});

xmpp.start().catch((error) => {
  print({ event: "failed", error: String(error) });
  process.exit(1);
});
