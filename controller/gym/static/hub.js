// The gym hub's dashboard. Every text from the hub goes in with textContent, never as markup:
// a machine name or a fault text is data, not markup.
"use strict";

const tiles = new Map(); // "site/machine" -> {el, fields}
const PAGE = 50;
let offset = 0;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function siteGroup(site) {
  const id = "site-" + encodeURIComponent(site);
  let group = document.getElementById(id);
  if (!group) {
    group = el("div", {id, class: "site"});
    group.append(el("h3", {}, "Site " + site), el("div", {class: "tiles"}));
    const sites = document.getElementById("sites");
    const after = [...sites.children].find((g) => g.id > id);
    sites.insertBefore(group, after || null);
  }
  return group.querySelector(".tiles");
}

function tileFor(m) {
  const key = m.site + "/" + m.name;
  let tile = tiles.get(key);
  if (tile) return tile;
  const node = el("section", {role: "region", "aria-label": m.name, class: "tile"});
  const fields = {};
  node.append(el("h4", {}, m.name));
  fields.speed = el("div", {class: "speed"});
  node.append(fields.speed);
  const dl = el("dl");
  for (const [name, label] of [["status", "status"], ["power", "power"], ["mode", "mode"],
                               ["workout", "workout"], ["session", "session"], ["athlete", "athlete"],
                               ["faults", "faults"], ["seen", "last seen"]]) {
    fields[name] = el("dd", {"data-field": name});
    dl.append(el("dt", {}, label), fields[name]);
  }
  node.append(dl);
  const tilesOfSite = siteGroup(m.site);
  const after = [...tilesOfSite.children].find((t) => t.getAttribute("aria-label") > m.name);
  tilesOfSite.insertBefore(node, after || null);
  tile = {node, fields};
  tiles.set(key, tile);
  return tile;
}

function show(m) {
  const {node, fields} = tileFor(m);
  node.className = "tile " + m.status;
  const arrow = m.direction === "forward" ? "▲" : m.direction === "backward" ? "▼" : "■";
  fields.speed.textContent = `${arrow} ${(Math.abs(m.speed_mps) * 3.6).toFixed(1)} km/h`;
  fields.speed.setAttribute("data-speed-mps", String(m.speed_mps));
  fields.status.textContent = m.status;
  fields.power.textContent = `${Math.round(m.power_w)} W`;
  fields.mode.textContent = m.mode + (m.target === null || m.target === undefined ? "" : ` ${m.target}`);
  fields.workout.textContent = m.workout ? `${m.workout} / segment ${m.segment ?? "–"}` : "—";
  fields.session.textContent = m.session_state || "—";
  fields.athlete.textContent = m.athlete_name || m.athlete || "—";
  fields.faults.textContent = m.faults.length ? m.faults.map((f) => f.kind || f.fault || "fault").join(", ") : "none";
  fields.faults.className = m.faults.length ? "faults" : "";
  fields.seen.textContent = m.last_seen ? new Date(m.last_seen * 1000).toLocaleTimeString() : "never";
}

function connect() {
  const link = document.getElementById("link");
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { link.textContent = "live"; };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "machines") msg.machines.forEach(show);
  };
  ws.onclose = () => { link.textContent = "reconnecting…"; setTimeout(connect, 1000); };
}

function filters() {
  const params = new URLSearchParams();
  for (const name of ["machine", "since", "until", "workout", "direction"]) {
    const value = document.getElementById("f-" + name).value;
    if (value) params.set(name, value);
  }
  return params;
}

function duration(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s - m * 60)).padStart(2, "0")}`;
}

async function chart(id, cell) {
  const response = await fetch(`/api/sessions/${encodeURIComponent(id)}/records`);
  if (!response.ok) return;
  const rows = await response.json();
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 160 36");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `speed of session ${id}`);
  const top = Math.max(0.1, ...rows.map((r) => Math.abs(r.speed_mps)));
  const last = Math.max(1, rows.length - 1);
  const points = rows.map((r, i) => `${(i / last) * 160},${34 - (Math.abs(r.speed_mps) / top) * 32}`).join(" ");
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1d6fd8");
  svg.append(line);
  cell.replaceChildren(svg);
}

function totalsRows(tableId, rows, key) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    for (const v of [r[key], r.sessions, duration(r.elapsed_s), r.distance_m.toFixed(0), r.energy_kcal.toFixed(0)]) {
      tr.append(el("td", {}, String(v)));
    }
    return tr;
  }));
}

async function history() {
  const params = filters();
  params.set("limit", String(PAGE));
  params.set("offset", String(offset));
  const response = await fetch("/api/sessions?" + params);
  if (!response.ok) return;
  const page = await response.json();
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren(...page.sessions.map((s) => {
    const tr = el("tr");
    const cells = [s.started_at.slice(0, 19).replace("T", " "), s.site, s.machine, s.workout || s.mode,
                   duration(s.elapsed_s), s.distance_m.toFixed(1),
                   `${s.forward_m.toFixed(0)} / ${s.backward_m.toFixed(0)}`, s.avg_power_w.toFixed(0),
                   s.energy_kcal.toFixed(0)];
    for (const text of cells) tr.append(el("td", {}, text));
    const chartCell = el("td");
    const button = el("button", {type: "button"}, "show");
    button.addEventListener("click", () => chart(s.id, chartCell));
    chartCell.append(button);
    const links = el("td");
    for (const fmt of ["fit", "csv"]) {
      links.append(el("a", {href: `/api/sessions/${encodeURIComponent(s.id)}/export/${fmt}`, download: ""},
                      fmt.toUpperCase()), " ");
    }
    tr.append(chartCell, links);
    return tr;
  }));
  document.getElementById("page").textContent =
    page.total ? `${offset + 1}–${offset + page.sessions.length} of ${page.total}` : "no sessions";
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = offset + PAGE >= page.total;
  const totals = await fetch("/api/totals?" + filters());
  if (totals.ok) {
    const t = await totals.json();
    totalsRows("per-day", t.per_day, "day");
    totalsRows("per-machine", t.per_machine, "machine");
  }
}

document.getElementById("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  history();
});
document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); history(); });
document.getElementById("next").addEventListener("click", () => { offset += PAGE; history(); });
connect();
history();
setInterval(history, 15000);
