// heron web phone: registers over SIP-over-WebSocket with JsSIP and places and takes calls.
// Settings come from /config.js (window.HERON_CONFIG); every text from the network is shown
// with textContent, never as HTML.
"use strict";

(() => {
  const config = window.HERON_CONFIG;
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const ui = {
    registration: $("registration"), error: $("error"), dial: $("dial"), target: $("target"),
    incoming: $("incoming"), caller: $("caller"), call: $("call"), peer: $("peer"),
    state: $("call-state"), duration: $("duration"), remoteVideo: $("remote-video"),
    localVideo: $("local-video"), mute: $("mute"), hold: $("hold"), lastCall: $("last-call"),
  };
  const MAX_TARGET = 256;

  let ua = null;
  let session = null;
  let localStream = null;
  let iceServers = config ? config.ice_servers : [];
  let turnExpires = config ? config.turn_expires || 0 : 0;
  let timer = null;
  const params = new URLSearchParams(window.location.search);
  const icePolicy = params.get("ice_policy") === "relay" ? "relay" : (config && config.ice_transport_policy) || "all";

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  function setRegistration(state, text) {
    body.dataset.registration = state;
    ui.registration.textContent = text;
  }

  function setCall(state, text) {
    body.dataset.call = state;
    ui.state.textContent = text;
  }

  function peerName(identity) {
    if (!identity) return "unknown";
    const user = identity.uri ? identity.uri.user : "";
    const host = identity.uri ? identity.uri.host : "";
    const address = user ? `${user}@${host}` : host;
    return identity.display_name ? `${identity.display_name} <${address}>` : address;
  }

  // "bob", "1234" or "bob@example.org" (optionally with sip:) to a SIP URI; null if not one.
  function targetUri(text) {
    let target = text.trim();
    if (!target || target.length > MAX_TARGET || /[\s<>"]/.test(target)) return null;
    target = target.replace(/^sips?:/i, "");
    if (!target.includes("@")) target = `${target}@${config.domain}`;
    const uri = JsSIP.URI.parse(`sip:${target}`);
    return uri && uri.user ? uri.toString() : null;
  }

  // Fresh TURN credentials before each call when the ones we hold are about to expire.
  async function refreshIce() {
    if (Date.now() / 1000 < turnExpires - 300) return;
    try {
      const response = await fetch("/config.json", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const fresh = await response.json();
      iceServers = fresh.ice_servers;
      turnExpires = fresh.turn_expires || 0;
    } catch (_error) {
      // Keep the credentials we have; the call reports an ICE failure if they are stale.
    }
  }

  function pcConfig() {
    return { iceServers, iceTransportPolicy: icePolicy };
  }

  async function openMedia(video) {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video });
    } catch (error) {
      showError(`Cannot use the ${video ? "camera or microphone" : "microphone"}: ${error.name}. ` +
        "Allow access in the browser and try again.");
      return null;
    }
  }

  function stopMedia() {
    if (localStream) localStream.getTracks().forEach((track) => track.stop());
    localStream = null;
    ui.localVideo.srcObject = null;
    ui.remoteVideo.srcObject = null;
  }

  function attachPeerConnection(connection) {
    connection.addEventListener("track", (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      if (ui.remoteVideo.srcObject !== stream) ui.remoteVideo.srcObject = stream;
    });
  }

  function startTimer() {
    const started = Date.now();
    clearInterval(timer);
    timer = setInterval(() => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
      ui.duration.textContent = `${mm}:${String(seconds % 60).padStart(2, "0")}`;
    }, 1000);
  }

  function showCallPanel(peer) {
    ui.peer.textContent = peer;
    ui.duration.textContent = "";
    ui.mute.setAttribute("aria-pressed", "false");
    ui.mute.textContent = "Mute";
    ui.hold.setAttribute("aria-pressed", "false");
    ui.hold.textContent = "Hold";
    ui.incoming.hidden = true;
    ui.dial.hidden = true;
    ui.call.hidden = false;
  }

  function ended(text) {
    clearInterval(timer);
    stopMedia();
    session = null;
    ui.call.hidden = true;
    ui.incoming.hidden = true;
    ui.dial.hidden = false;
    setCall("ended", text);
    ui.lastCall.textContent = text;
  }

  function follow(current, peer) {
    current.on("peerconnection", (event) => attachPeerConnection(event.peerconnection));
    current.on("progress", () => {
      if (current.direction === "outgoing") setCall("ringing", "Ringing…");
    });
    current.on("accepted", () => setCall("connecting", "Connecting…"));
    current.on("confirmed", () => {
      setCall("connected", "Connected");
      startTimer();
    });
    current.on("hold", () => setCall("held", current.isOnHold().local ? "On hold" : "Held by the other side"));
    current.on("unhold", () => setCall("connected", "Connected"));
    current.on("ended", (event) => {
      ended(event.originator === "local" ? `You ended the call with ${peer}.` : `${peer} ended the call.`);
    });
    current.on("failed", (event) => {
      const cause = event.cause || "unknown error";
      let text = `Call with ${peer} failed: ${cause}.`;
      if (cause === JsSIP.C.causes.CANCELED) {
        text = event.originator === "local" ? `Call with ${peer} cancelled.` : `Missed call from ${peer}.`;
      }
      ended(text);
    });
  }

  async function placeCall(video) {
    showError("");
    if (session) return;
    const uri = targetUri(ui.target.value);
    if (!uri) {
      showError("Enter a user name, a number or an address such as bob@example.org.");
      return;
    }
    if (body.dataset.registration !== "registered") {
      showError("The phone is not connected yet; wait for “Ready”.");
      return;
    }
    await refreshIce();
    const stream = await openMedia(video);
    if (!stream) return;
    localStream = stream;
    ui.localVideo.srcObject = video ? stream : null;
    const peer = uri.replace(/^sip:/, "");
    showCallPanel(peer);
    setCall("calling", "Calling…");
    const current = ua.call(uri, {
      mediaStream: stream,
      pcConfig: pcConfig(),
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: video },
      eventHandlers: {
        peerconnection: (event) => attachPeerConnection(event.peerconnection),
      },
    });
    session = current;
    follow(current, peer);
  }

  async function answer(video) {
    const current = session;
    if (!current || current.direction !== "incoming") return;
    showError("");
    await refreshIce();
    const stream = await openMedia(video);
    if (!stream) {
      current.terminate({ status_code: 488, reason_phrase: "No Media Access" });
      return;
    }
    if (session !== current) {  // the caller gave up while we asked for the devices
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    localStream = stream;
    ui.localVideo.srcObject = video ? stream : null;
    showCallPanel(peerName(current.remote_identity));
    setCall("connecting", "Connecting…");
    current.answer({ mediaStream: stream, pcConfig: pcConfig() });
  }

  function incoming(current) {
    if (session) {
      current.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    session = current;
    const peer = peerName(current.remote_identity);
    ui.caller.textContent = peer;
    ui.incoming.hidden = false;
    ui.dial.hidden = true;
    setCall("incoming", "Incoming call");
    follow(current, peer);
  }

  function bindButtons() {
    ui.dial.addEventListener("submit", (event) => {
      event.preventDefault();
      const video = event.submitter && event.submitter.value === "video";
      placeCall(Boolean(video));
    });
    $("answer-audio").addEventListener("click", () => answer(false));
    $("answer-video").addEventListener("click", () => answer(true));
    $("decline").addEventListener("click", () => {
      if (session) session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    });
    $("hangup").addEventListener("click", () => {
      if (session) session.terminate();
    });
    ui.mute.addEventListener("click", () => {
      if (!session) return;
      const muted = session.isMuted().audio;
      if (muted) session.unmute({ audio: true }); else session.mute({ audio: true });
      ui.mute.setAttribute("aria-pressed", String(!muted));
      ui.mute.textContent = muted ? "Mute" : "Unmute";
    });
    ui.hold.addEventListener("click", () => {
      if (!session || !session.isEstablished()) return;
      const held = session.isOnHold().local;
      if (held) session.unhold(); else session.hold();
      ui.hold.setAttribute("aria-pressed", String(!held));
      ui.hold.textContent = held ? "Hold" : "Resume";
    });
    window.addEventListener("pagehide", () => {
      if (ua) ua.stop();
    });
  }

  function start() {
    bindButtons();
    if (!config) {
      setRegistration("failed", "Offline");
      showError("The phone settings did not load; reload the page.");
      return;
    }
    if (typeof JsSIP === "undefined") {
      setRegistration("failed", "Offline");
      showError("The SIP library is missing on the server (make assets).");
      return;
    }
    if (!config.identity || !config.websocket) {
      setRegistration("failed", "Offline");
      showError(config.error || "Log in again to use the phone.");
      return;
    }
    JsSIP.debug.disable("JsSIP:*");
    const socket = new JsSIP.WebSocketInterface(config.websocket);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: config.identity.uri,
      display_name: config.identity.display_name,
      authorization_user: config.identity.authorization_user,
      password: config.identity.password,
      register: true,
      session_timers: false,
      user_agent: "heron web phone",
    });
    ua.on("connecting", () => setRegistration("connecting", "Connecting…"));
    ua.on("disconnected", () => setRegistration("offline", "Offline, reconnecting…"));
    ua.on("registered", () => {
      setRegistration("registered", "Ready");
      showError("");
    });
    ua.on("unregistered", () => setRegistration("offline", "Not registered"));
    ua.on("registrationFailed", (event) => {
      setRegistration("failed", "Not registered");
      const hint = event.cause === JsSIP.C.causes.AUTHENTICATION_ERROR
        ? " Your login may have expired: log out and in again." : "";
      showError(`Registration failed: ${event.cause}.${hint}`);
    });
    ua.on("newRTCSession", (event) => {
      if (event.originator === "remote") incoming(event.session);
    });
    ua.start();
  }

  start();
})();
