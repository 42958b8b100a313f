// An athlete's page at the hub: levels, personal bests (forward and backward apart), a
// history chart per best, the next workout, recent sessions. Text goes in with textContent.
"use strict";
const athleteId = decodeURIComponent(location.pathname.split("/").pop());
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// "forward_200m_s" -> ["200 m", "forward"]; "backward_power_60s_w" -> ["1 min power", "backward"]
function splitKey(key) {
  let m = key.match(/^(forward|backward)_(\d+)m_s$/);
  if (m) return [`${m[2] === "1000" ? "1 km" : m[2] + " m"} time`, m[1]];
  m = key.match(/^(forward|backward)_power_(\d+)s_w$/);
  if (m) return [`${Number(m[2]) >= 60 ? Number(m[2]) / 60 + " min" : m[2] + " s"} power`, m[1]];
  m = key.match(/^(forward|backward)_sled_10m_kg$/);
  if (m) return ["heaviest sled over 10 m", m[1]];
  if (key === "backward_walk_m") return ["longest walk", "backward"];
  return [key, ""];
}
function fmt(key, v) {
  if (key.endsWith("_s")) return v.toFixed(1) + " s";
  if (key.endsWith("_w")) return Math.round(v) + " W";
  if (key.endsWith("_kg")) return Math.round(v) + " kg";
  return Math.round(v) + " m";
}

function chart(key, points) {
  const [what, dir] = splitKey(key);
  const fig = el("figure", {class: "chart"});
  fig.append(el("figcaption", {}, `${what} ${dir}`));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 200 60"); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `history of ${what} ${dir}`);
  const values = points.map((p) => p.value);
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const xy = points.map((p, i) => [points.length === 1 ? 100 : 5 + 190 * i / (points.length - 1),
                                   55 - 50 * (p.value - lo) / span]);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  svg.append(line);
  for (const [i, [x, y]] of xy.entries()) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x.toFixed(1)); dot.setAttribute("cy", y.toFixed(1)); dot.setAttribute("r", "2.5");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${points[i].started_at.slice(0, 10)}: ${fmt(key, points[i].value)}`;
    dot.append(title); svg.append(dot);
  }
  fig.append(svg);
  return fig;
}

async function load() {
  const r = await fetch(`/api/athletes/${encodeURIComponent(athleteId)}`);
  if (!r.ok) { document.getElementById("error").textContent = r.status === 404 ? "no such athlete" : "sign in on the dashboard first"; return; }
  const a = await r.json();
  document.title = a.profile.name;
  document.getElementById("name").textContent = a.profile.name;
  document.getElementById("level").textContent = `level ${a.level}`;
  const levels = document.getElementById("levels");
  for (const m of a.level_measures) {
    const box = el("div", {class: "quality", "aria-label": `${m.quality} level`});
    box.append(el("div", {class: "q"}, m.quality), el("div", {class: "l"}, String(m.level)),
               el("div", {class: "m"}, m.measure === null ? "no result yet" : `${m.measure} ${m.unit}`));
    levels.append(box);
  }
  document.getElementById("proposal").textContent = a.proposal ? `${a.proposal.title}: ${a.proposal.reason}` : "—";
  const rows = new Map();
  for (const [key, value] of Object.entries(a.bests)) {
    const [what, dir] = splitKey(key);
    if (!rows.has(what)) rows.set(what, {});
    rows.get(what)[dir] = fmt(key, value);
  }
  const body = document.querySelector("#bests tbody");
  for (const [what, byDir] of rows) {
    const tr = el("tr");
    tr.append(el("td", {}, what), el("td", {}, byDir.forward || "—"), el("td", {}, byDir.backward || "—"));
    body.append(tr);
  }
  const charts = document.getElementById("charts");
  for (const [key, points] of Object.entries(a.history).sort()) charts.append(chart(key, points));
  const sessions = document.querySelector("#sessions tbody");
  for (const s of a.recent_sessions) {
    const tr = el("tr");
    for (const t of [s.started_at.slice(0, 19).replace("T", " "), s.machine, s.workout || s.mode, s.class || "—",
                     s.distance_m.toFixed(1), Math.round(s.avg_power_w)]) tr.append(el("td", {}, String(t)));
    sessions.append(tr);
  }
}
load();
