// heron click-to-call: an anonymous visitor calls one public destination over SIP-over-WebSocket.
// The page is the same for every name: the name comes from the URL (/call/NAME), everything
// else from /call/NAME/config.json (target, anonymous identity, short-lived TURN credentials).
// The visitor never registers; heron's SIP proxy lets it INVITE that target and nothing else.
"use strict";

(() => {
  const name = decodeURIComponent(window.location.pathname.split("/")[2] || "");
  const statusLine = document.getElementById("status");
  const callButton = document.getElementById("call");
  const muteButton = document.getElementById("mute");
  const hangupButton = document.getElementById("hangup");
  const remoteAudio = document.getElementById("remote");
  let ua = null;
  let session = null;

  document.getElementById("title").textContent = `Call ${name}`;
  document.title = `Call ${name}`;

  // data-state (idle, connecting, ringing, connected, ended, failed) is for the style and tests.
  function show(state, text) {
    document.body.dataset.state = state;
    statusLine.textContent = text;
    const busy = ["connecting", "ringing", "connected"].includes(state);
    callButton.hidden = busy;
    callButton.disabled = busy;
    hangupButton.hidden = !busy;
    muteButton.hidden = state !== "connected";
  }

  function describe(event) {
    const causes = JsSIP.C.causes;
    const status = event.message && event.message.status_code;
    if (event.cause === causes.USER_DENIED_MEDIA_ACCESS) {
      return "The call needs your microphone: allow it in the browser and call again.";
    }
    if (event.cause === causes.BUSY) return "Everyone is busy. Please try again later.";
    if (event.cause === causes.UNAVAILABLE || event.cause === causes.REQUEST_TIMEOUT) {
      return "Nobody can take the call right now. Please try again later.";
    }
    if (status === 503) return "Too many calls from your address. Please wait a minute.";
    if (event.cause === causes.CONNECTION_ERROR) return "Cannot reach the phone service.";
    if (event.cause === causes.REJECTED) return "The call was refused.";
    return `The call failed (${event.cause}).`;
  }

  function finish(state, text) {
    session = null;
    if (ua) {
      ua.stop();
      ua = null;
    }
    remoteAudio.srcObject = null;
    muteButton.setAttribute("aria-pressed", "false");
    muteButton.textContent = "Mute";
    show(state, text);
  }

  async function fetchConfig() {
    const response = await fetch(`/call/${encodeURIComponent(name)}/config.json`, {
      cache: "no-store",
      credentials: "omit",
    });
    if (response.status === 429) throw new Error("Too many calls from your address. Please wait a minute.");
    if (!response.ok) throw new Error("This destination cannot be called.");
    return response.json();
  }

  function place(config) {
    session = ua.call(config.target, {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: config.ice_servers },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
      sessionTimersExpires: 120,
      eventHandlers: {
        peerconnection: (event) => {
          event.peerconnection.addEventListener("track", (track) => {
            remoteAudio.srcObject = track.streams[0] || new MediaStream([track.track]);
          });
        },
        progress: () => show("ringing", "Ringing…"),
        confirmed: () => show("connected", "Connected"),
        ended: () => finish("ended", "Call ended."),
        failed: (event) => {
          if (event.cause === JsSIP.C.causes.CANCELED) finish("ended", "Call cancelled.");
          else finish("failed", describe(event));
        },
      },
    });
  }

  async function start() {
    if (typeof JsSIP === "undefined") {
      show("failed", "The phone library is missing on this server (run `make assets`).");
      return;
    }
    show("connecting", "Connecting…");
    let config;
    try {
      config = await fetchConfig();
    } catch (error) {
      show("failed", error.message);
      return;
    }
    JsSIP.debug.disable("JsSIP:*");
    const socket = new JsSIP.WebSocketInterface(`wss://${window.location.host}${config.websocket_path}`);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: config.identity.uri,
      display_name: config.identity.display_name,
      register: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 10,
    });
    let placed = false;
    ua.on("connected", () => {
      if (placed) return;
      placed = true;
      try {
        place(config);
      } catch (error) {
        finish("failed", `The call could not start (${error.message}).`);
      }
    });
    ua.on("disconnected", () => {
      if (!placed) finish("failed", "Cannot reach the phone service.");
    });
    ua.start();
  }

  callButton.addEventListener("click", start);
  hangupButton.addEventListener("click", () => {
    if (session) session.terminate();
    else finish("ended", "Call ended.");
  });
  muteButton.addEventListener("click", () => {
    if (!session) return;
    const muted = session.isMuted().audio;
    if (muted) session.unmute({ audio: true });
    else session.mute({ audio: true });
    muteButton.setAttribute("aria-pressed", String(!muted));
    muteButton.textContent = muted ? "Mute" : "Unmute";
  });
  window.addEventListener("pagehide", () => {
    if (session) session.terminate();
  });
})();
