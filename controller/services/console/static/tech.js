// Technician page: every request carries the token (header, never the URL); the server
// refuses without it and locks a client out after repeated wrong tokens. Everything shown
// here that comes from files or the board is set as text (textContent), never as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("millctl-token") || "";

async function api(path, method = "GET", body = undefined) {
  const headers = { "X-Technician-Token": token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) { const err = new Error(data.error || r.statusText); err.status = r.status; err.data = data; throw err; }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells, tag = "td") { const tr = el("tr"); for (const c of cells) tr.appendChild(el(tag, c)); return tr; }

async function refresh() {
  const regs = await api("/api/tech/registers");
  $("board").textContent = regs.board + (regs.link_ok ? "" : " (no data)");
  $("registers").replaceChildren(...regs.rows.map((r) =>
    row([r.table, r.name, r.address, r.value ?? "—", r.unit || "", r.meaning || ""])));
  const f = await api("/api/tech/faults");
  const list = [...f.active.map((e) => ["active", e]), ...f.latched.map((e) => ["latched", e])];
  const rows = list.map(([kind, e]) => {
    const d = el("div", undefined, "fault-row");
    d.append(el("b", `${kind}: ${e.code}`), " ", el("span", `${e.cause || ""} ${e.at ? "(" + e.at + ")" : ""}`));
    return d;
  });
  if (!rows.length) rows.push(el("div", "No active or latched faults.", "fault-row"));
  if (f.brake_inhibited) {
    const d = el("div", undefined, "fault-row");
    d.append(el("b", "Brake disabled"), " until the coil fault is cleared.");
    rows.unshift(d);
  }
  $("faults").replaceChildren(...rows);
}

async function loadCalibration() {
  const c = await api("/api/tech/calibration");
  const parts = [el("div", `active: ${c.active ?? "—"}`, "target calib-active")];
  if (c.history.length) {
    const table = el("table");
    table.appendChild(row(["version", "created", "method", "note"], "th"));
    for (const h of c.history) {
      table.appendChild(row([h.version + (h.version === c.active ? " ✔" : ""), h.created_at || "", h.method || "",
        h.note || h.error || ""]));
    }
    parts.push(table);
  } else {
    parts.push(el("div", c.note || "no stored calibrations (nominal)", "note"));
  }
  $("calibration").replaceChildren(...parts);
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

async function clearFaults() {
  // Clearing re-enables the brake: the server shows a code on the machine's own terminal,
  // which only someone standing at the machine can read.
  try {
    const r = await api("/api/tech/faults/clear", "POST", { code: $("clear-code").value.trim() });
    $("clear-status").textContent = r.cleared.length ? "cleared: " + r.cleared.join(", ") : (r.note || "nothing to clear");
    $("clear-code").value = ""; $("clear-code-box").hidden = true;
  } catch (e) {
    $("clear-status").textContent = e.message;
    if (e.data && e.data.code_required) { $("clear-code-box").hidden = false; $("clear-code").focus(); }
  }
  refresh().catch(() => {});
}

$("unlock").onclick = () => { token = $("token").value; unlock(); };
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("unlock").click(); });
$("clear").onclick = () => {
  if (!confirm("Clear every latched fault? Only after the cause is checked and fixed.")) return;
  clearFaults();
};
$("clear-confirm").onclick = clearFaults;
if (token) unlock();
