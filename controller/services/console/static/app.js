// millctl operator console: live state over a WebSocket, commands back over it.
"use strict";
const $ = (id) => document.getElementById(id);
let ws = null, state = null, reconnectMs = 500;
const history = [];               // [t_ms, speed_kmh, power_w] for the chart
const CHART_S = 60;
window.millctl = { latencies: [], messages: 0 };   // read by tests and the bench

function fmtTime(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
}
function fmtPace(sPerKm) { return sPerKm ? fmtTime(sPerKm) : "—"; }
function num(v, digits) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }

function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { reconnectMs = 500; $("link").textContent = "live"; $("link").classList.remove("bad"); };
  ws.onclose = () => {
    $("link").textContent = "connection lost — reconnecting"; $("link").classList.add("bad");
    setTimeout(connect, reconnectMs); reconnectMs = Math.min(reconnectMs * 2, 5000);
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "state") {
      if (msg.sample_wall_ms) window.millctl.latencies.push(performance.timeOrigin + performance.now() - msg.sample_wall_ms);
      if (window.millctl.latencies.length > 5000) window.millctl.latencies.shift();
      window.millctl.messages++;
      render(msg);
    } else if (msg.type === "result") {
      showMessage(msg.ok ? "" : msg.error);
      if (msg.ok) loadSessions();
    }
  };
}

function send(command) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "command", command }));
  else showMessage("not connected to the controller");
}
function showMessage(text) { $("message").hidden = !text; $("message").textContent = text || ""; }

function render(s) {
  state = s;
  $("machine").textContent = s.machine;
  const st = s.session.state;
  $("state").textContent = st; $("state").dataset.state = st;
  document.body.dataset.state = st;
  $("start").disabled = !(st === "ready" || st === "idle" || st === "finished");
  $("pause").disabled = st !== "running";
  $("resume").disabled = st !== "paused";
  $("stop").disabled = !(st === "running" || st === "paused");
  $("workout").disabled = st === "running" || st === "paused";
  if (!s.link_ok) { $("link").textContent = "no board data"; $("link").classList.add("bad"); }
  // Faults: a banner nobody can miss.
  const faults = s.faults || [];
  $("fault").hidden = faults.length === 0;
  // What happened, in words, then what the machine is doing about it; the raw cause on hover.
  $("fault-text").textContent = faults.map((f) => `${(f.name || f.code).toUpperCase()} — ${f.response}`).join(" · ");
  $("fault-text").title = faults.map((f) => f.cause).join("\n");
  if (s.speed_kmh === undefined) return;
  const dir = s.direction;
  $("direction").dataset.dir = dir;
  $("direction").textContent = dir === "forward" ? "▲" : dir === "backward" ? "▼" : "■";
  $("dir-text").textContent = dir;
  $("speed").textContent = Math.abs(s.speed_kmh).toFixed(1);
  $("pace").textContent = fmtPace(s.pace_s_per_km);
  $("power").textContent = s.power_w === null ? "—" : Math.round(Math.max(0, s.power_w));
  $("force").textContent = s.force_n === null ? "—" : Math.round(Math.abs(s.force_n));
  $("uncalibrated").hidden = s.calibration !== "nominal";
  $("distance").textContent = Math.round(s.distance_m);
  $("fwd").textContent = Math.round(s.forward_m);
  $("back").textContent = Math.round(s.backward_m);
  $("hr").textContent = s.heart_rate_bpm ?? "—";
  $("kcal").textContent = num(s.energy_kcal, 1);
  $("elapsed").textContent = fmtTime(s.elapsed_s);
  $("remaining").textContent = fmtTime(s.remaining_s);
  $("mode").textContent = s.mode;
  $("target").textContent = s.target === null ? "—" : targetText(s.mode, s.target);
  $("minus").disabled = $("plus").disabled = !s.target_step || st === "finished";
  renderSegment(s.segment);
  history.push([Date.now(), Math.abs(s.speed_kmh), Math.max(0, s.power_w ?? 0)]);
  while (history.length && history[0][0] < Date.now() - CHART_S * 1000) history.shift();
}

function targetText(mode, t) {
  const unit = { level: "", erg: " W", "speed-cap": " m/s", sled: " kg", parachute: " m²" }[mode] ?? "";
  return (mode === "erg" || mode === "sled" ? Math.round(t) : Number(t).toFixed(1)) + unit;
}

function renderSegment(seg) {
  const tile = $("segment-tile");
  if (!seg) {
    $("seg-label").textContent = state && state.workout ? state.workout : "no workout";
    $("seg-left").textContent = ""; $("seg-count").textContent = ""; $("seg-next").textContent = "";
    $("seg-bar").style.width = "0"; tile.classList.remove("wrong"); return;
  }
  $("seg-count").textContent = `${seg.index + 1} / ${seg.count}`;
  $("seg-label").textContent = (seg.label || `segment ${seg.index + 1}`) +
    (seg.direction !== "either" ? ` (${seg.direction})` : "");
  const left = seg.remaining_s !== null ? fmtTime(seg.remaining_s)
    : seg.remaining_m !== null ? Math.round(seg.remaining_m) + " m" : "";
  $("seg-left").textContent = left;
  $("seg-left").classList.toggle("soon", seg.remaining_s !== null && seg.remaining_s <= 3.5);
  $("seg-bar").style.width = ((seg.progress ?? 0) * 100).toFixed(1) + "%";
  $("seg-next").textContent = (seg.wrong_direction ? "WRONG DIRECTION — " : "") +
    (seg.next_label ? "next: " + seg.next_label : "last segment");
  tile.classList.toggle("wrong", !!seg.wrong_direction);
}

function drawChart() {
  const c = $("chart"), ctx = c.getContext("2d");
  const w = c.clientWidth, h = c.clientHeight, dpr = window.devicePixelRatio || 1;
  if (c.width !== w * dpr || c.height !== h * dpr) { c.width = w * dpr; c.height = h * dpr; }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#2a3641"; ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) { ctx.beginPath(); ctx.moveTo(0, h * i / 4); ctx.lineTo(w, h * i / 4); ctx.stroke(); }
  if (history.length > 1) {
    const now = Date.now();
    const maxV = Math.max(10, ...history.map((p) => p[1])), maxP = Math.max(200, ...history.map((p) => p[2]));
    const line = (idx, max, color) => {
      ctx.strokeStyle = color; ctx.lineWidth = 3; ctx.beginPath();
      history.forEach((p, i) => {
        const x = w - (now - p[0]) / (CHART_S * 1000) * w, y = h - 4 - (p[idx] / max) * (h - 8);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line(1, maxV * 1.1, "#0a84ff"); line(2, maxP * 1.1, "#ff6b6b");
    ctx.fillStyle = "#8a99a8"; ctx.font = "14px sans-serif";
    ctx.fillText(`${(maxV * 1.1).toFixed(0)} km/h`, 6, 16); ctx.fillText(`${(maxP * 1.1).toFixed(0)} W`, w - 70, 16);
  }
  requestAnimationFrame(drawChart);
}

async function loadWorkouts() {
  try {
    const list = await (await fetch("/api/workouts")).json();
    const sel = $("workout");
    for (const wk of list) {
      const o = document.createElement("option");
      o.value = wk.name; o.textContent = wk.title + (wk.duration_s ? ` (${fmtTime(wk.duration_s)})` : "");
      if (wk.error) { o.disabled = true; o.textContent += " — invalid"; }
      sel.appendChild(o);
    }
  } catch (e) { /* the picker just stays on free run */ }
}

async function loadSessions() {
  try {
    const r = await fetch("/api/sessions");
    if (!r.ok) return;
    const rows = await r.json();
    $("sessions").innerHTML = "";
    for (const s of rows.slice(0, 30)) {
      const tr = document.createElement("tr");
      const base = `/api/sessions/${encodeURIComponent(s.id)}/export`;
      const cells = [s.started_at.replace("T", " ").replace("+00:00", ""), s.state, s.workout || s.mode,
        fmtTime(s.elapsed_s), Math.round(s.distance_m) + " m", Math.round(s.avg_power_w)];
      for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
      const td = document.createElement("td");
      for (const fmt of ["fit", "csv", "png"]) {
        const a = document.createElement("a"); a.href = `${base}.${fmt}`; a.textContent = fmt.toUpperCase(); a.download = "";
        td.appendChild(a);
      }
      tr.appendChild(td); $("sessions").appendChild(tr);
    }
  } catch (e) { /* history is optional on this page */ }
}

$("start").onclick = () => send({ name: "start", workout: $("workout").value || null });
$("pause").onclick = () => send({ name: "pause" });
$("resume").onclick = () => send({ name: "resume" });
$("stop").onclick = () => send({ name: "stop" });
const step = (sign) => {
  if (!state || !state.target_step) return;
  const t = Math.round(((state.target ?? 0) + sign * state.target_step) * 100) / 100;
  send({ name: "set-mode", mode: state.mode, target: Math.max(0, t) });
};
$("minus").onclick = () => step(-1);
$("plus").onclick = () => step(+1);
$("history").addEventListener("toggle", loadSessions);

loadWorkouts(); loadSessions(); connect(); requestAnimationFrame(drawChart);
