// Technician page: every request carries the token; the server refuses without it.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("millctl-token") || "";

async function api(path, method = "GET") {
  const r = await fetch(path, { method, headers: { "X-Technician-Token": token } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }

async function refresh() {
  const regs = await api("/api/tech/registers");
  $("board").textContent = regs.board + (regs.link_ok ? "" : " (no data)");
  $("registers").innerHTML = "";
  for (const r of regs.rows) {
    const tr = document.createElement("tr");
    [r.table, r.name, r.address, r.value ?? "—", r.unit || "", r.meaning || ""].forEach((t) => cell(tr, String(t)));
    $("registers").appendChild(tr);
  }
  const f = await api("/api/tech/faults");
  const list = [...f.active.map((e) => ["active", e]), ...f.latched.map((e) => ["latched", e])];
  $("faults").innerHTML = list.length ? "" : "<div class='fault-row'>No active or latched faults.</div>";
  for (const [kind, e] of list) {
    const d = document.createElement("div"); d.className = "fault-row";
    d.innerHTML = `<b></b> <span></span>`;
    d.querySelector("b").textContent = `${kind}: ${e.code}`;
    d.querySelector("span").textContent = `${e.cause || ""} ${e.at ? "(" + e.at + ")" : ""}`;
    $("faults").appendChild(d);
  }
  if (f.brake_inhibited) $("faults").insertAdjacentHTML("afterbegin", "<div class='fault-row'><b>Brake disabled</b> until the coil fault is cleared.</div>");
}

async function loadCalibration() {
  const c = await api("/api/tech/calibration");
  const rows = c.history.map((h) => `<tr><td>${h.version}${h.version === c.active ? " ✔" : ""}</td><td>${h.created_at || ""}</td><td>${h.method || ""}</td><td>${h.note || h.error || ""}</td></tr>`);
  $("calibration").innerHTML = `<div class="target" style="text-align:left">active: ${c.active ?? "—"}</div>` +
    (rows.length ? `<table><tr><th>version</th><th>created</th><th>method</th><th>note</th></tr>${rows.join("")}</table>` : `<div class="note">${c.note || "no stored calibrations (nominal)"}</div>`);
}

async function unlock() {
  try {
    await api("/api/tech/check");
    sessionStorage.setItem("millctl-token", token);
    $("login").hidden = true; $("panels").hidden = false;
    await loadCalibration(); await refresh();
    setInterval(() => refresh().catch(() => {}), 1000);
  } catch (e) { $("login-error").textContent = e.message; }
}

$("unlock").onclick = () => { token = $("token").value; unlock(); };
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("unlock").click(); });
$("clear").onclick = async () => {
  if (!confirm("Clear every latched fault? Only after the cause is checked and fixed.")) return;
  const r = await api("/api/tech/faults/clear", "POST");
  alert(r.cleared.length ? "cleared: " + r.cleared.join(", ") : (r.note || "nothing to clear"));
  refresh();
};
if (token) unlock();
