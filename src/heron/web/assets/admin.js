// heron admin page: everything through the JSON API, text only (never innerHTML),
// writes with the session's CSRF token in X-CSRF-Token.
"use strict";

const POLL_MS = 3000;
const HISTORY = 60;
const SERIES = [
  { name: "sip", field: "requests" },
  { name: "xmpp", field: "stanzas" },
  { name: "turn", field: "packets_relayed" },
];

let csrf = "";
let previous = null;
const history = [];

function status(text) {
  document.getElementById("status").textContent = text;
}

async function call(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    location.assign("/login?next=" + encodeURIComponent(location.pathname));
    throw new Error("logged out");
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch (ignored) {
      // the body was not JSON; the status text says enough
    }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = Array.isArray(text) ? text.join(", ") : String(text ?? "");
  row.appendChild(td);
  return td;
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}

async function loadUsers() {
  const users = await call("GET", "/api/users");
  const body = document.getElementById("user-rows");
  body.replaceChildren();
  for (const user of users) {
    const row = document.createElement("tr");
    row.dataset.address = user.address;
    cell(row, user.address);
    cell(row, user.admin ? "yes" : "");
    cell(row, user.created);
    const actions = cell(row, "");
    actions.append(
      button("Reset password", () => resetPassword(user.address)),
      button("Delete", () => deleteUser(user.address)),
    );
    body.appendChild(row);
  }
}

async function addUser(event) {
  event.preventDefault();
  const form = event.target;
  const address = form.address.value.trim();
  try {
    await call("POST", "/api/users", {
      address,
      password: form.password.value,
      admin: form.admin.checked,
    });
    form.reset();
    status(`Added ${address}.`);
    await loadUsers();
  } catch (error) {
    status(`Could not add ${address}: ${error.message}`);
  }
}

async function deleteUser(address) {
  if (!confirm(`Delete ${address} and all its secrets?`)) return;
  try {
    await call("DELETE", "/api/users/" + encodeURIComponent(address));
    status(`Deleted ${address}.`);
    await loadUsers();
  } catch (error) {
    status(`Could not delete ${address}: ${error.message}`);
  }
}

async function resetPassword(address) {
  const password = prompt(`New password for ${address}`);
  if (!password) return;
  try {
    await call("POST", `/api/users/${encodeURIComponent(address)}/password`, { password });
    status(`Password of ${address} changed.`);
  } catch (error) {
    status(`Could not change the password of ${address}: ${error.message}`);
  }
}

async function loadTable(table) {
  const columns = table.dataset.columns.split(" ");
  const rows = await call("GET", table.dataset.source);
  const head = document.createElement("tr");
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column.replace(/_/g, " ");
    head.appendChild(th);
  }
  const thead = document.createElement("thead");
  thead.appendChild(head);
  const tbody = document.createElement("tbody");
  for (const source of rows) {
    const row = document.createElement("tr");
    for (const column of columns) cell(row, source[column]);
    tbody.appendChild(row);
  }
  if (rows.length === 0) {
    const row = document.createElement("tr");
    cell(row, "none").colSpan = columns.length;
    tbody.appendChild(row);
  }
  table.replaceChildren(thead, tbody);
}

function showCounters(counters) {
  const list = document.getElementById("counters");
  list.replaceChildren();
  for (const service of ["sip", "turn", "xmpp"]) {
    for (const [name, value] of Object.entries(counters[service] || {})) {
      const dt = document.createElement("dt");
      dt.textContent = `${service} ${name.replace(/_/g, " ")}`;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dd.dataset.counter = `${service}.${name}`;
      list.append(dt, dd);
    }
  }
}

function rates(counters) {
  if (previous === null) return null;
  const seconds = Math.max(counters.time - previous.time, 0.001);
  return SERIES.map(({ name, field }) => {
    const now = (counters[name] || {})[field] || 0;
    const before = (previous[name] || {})[field] || 0;
    return Math.max(now - before, 0) / seconds;
  });
}

function drawChart() {
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  const width = 600;
  const height = 160;
  const top = Math.max(1, ...history.flat());
  svg.replaceChildren();
  const scale = document.createElementNS(ns, "text");
  scale.setAttribute("x", "4");
  scale.setAttribute("y", "12");
  scale.textContent = `${top.toFixed(1)}/s`;
  svg.appendChild(scale);
  SERIES.forEach(({ name }, index) => {
    const points = history.map((sample, i) => {
      const x = (i / (HISTORY - 1)) * width;
      const y = height - (sample[index] / top) * (height - 16);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", name);
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
  });
}

async function poll() {
  try {
    const counters = await call("GET", "/api/counters");
    showCounters(counters);
    const sample = rates(counters);
    previous = counters;
    if (sample !== null) {
      history.push(sample);
      if (history.length > HISTORY) history.shift();
      drawChart();
    }
    await Promise.all([...document.querySelectorAll("table[data-source]")].map(loadTable));
  } catch (error) {
    status(`Update failed: ${error.message}`);
  }
}

async function start() {
  const session = await call("GET", "/api/session");
  csrf = session.csrf;
  document.getElementById("whoami").textContent = session.address;
  document.querySelector("#logout input[name=csrf]").value = csrf;
  document.getElementById("add-user").addEventListener("submit", addUser);
  await Promise.all([loadUsers(), poll()]);
  setInterval(poll, POLL_MS);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  start().catch((error) => status(`Could not load: ${error.message}`));
});
