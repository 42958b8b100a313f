// Projector view of a class: the live leaderboard, refreshed every second.
// Every text from the hub is written with textContent: a name is data, never markup.
"use strict";
const classId = decodeURIComponent(location.pathname.split("/").pop());
let info = null;
window.millctlClass = { updates: 0 };   // read by tests

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render(rows) {
  const body = document.querySelector("#board tbody");
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.machine = r.machine;
    tr.dataset.status = r.status;
    tr.setAttribute("aria-label", `${r.rank}. ${r.athlete_name || r.athlete || r.machine}`);
    tr.append(cell(String(r.rank), "rank"), cell(r.athlete_name || r.athlete || "—", "who"), cell(r.machine),
      cell(r.distance_m.toFixed(1), "num"), cell(r.forward_m.toFixed(0), "num"), cell(r.backward_m.toFixed(0), "num"),
      cell((r.work_j / 1000).toFixed(1), "num"), cell(Math.round(r.avg_power_w).toString(), "num"),
      cell(r.status === "out" ? "OUT" : r.status, "status"));
    body.appendChild(tr);
  }
  window.millctlClass.updates++;
}

function clock() {
  if (!info) return;
  const left = (Date.parse(info.start_at) - Date.now()) / 1000;
  document.getElementById("clock").textContent = left > 0 ? `starts in ${Math.ceil(left)} s`
    : `running ${Math.floor(-left / 60)}:${String(Math.floor(-left % 60)).padStart(2, "0")}`;
}

async function refresh() {
  const link = document.getElementById("link");
  try {
    if (!info) {
      const r = await fetch(`/api/classes/${encodeURIComponent(classId)}`);
      if (!r.ok) { link.textContent = r.status === 404 ? "no such class" : "sign in on the dashboard first"; return; }
      info = await r.json();
      document.getElementById("title").textContent = `Class ${info.id} · ${info.workout}`;
    }
    const r = await fetch(`/api/classes/${encodeURIComponent(classId)}/leaderboard`);
    if (r.ok) { render(await r.json()); link.textContent = "live"; } else link.textContent = "hub not answering";
  } catch (e) { link.textContent = "hub not answering"; }
}

refresh();
setInterval(refresh, 1000);
setInterval(clock, 250);
