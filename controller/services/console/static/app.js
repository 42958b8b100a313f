// millctl operator console: live state over a WebSocket, commands back over it.
"use strict";
const $ = (id) => document.getElementById(id);
let ws = null, state = null, reconnectMs = 500;
const history = [];               // [t_ms, speed_kmh, power_w] for the chart
const CHART_S = 60;
window.millctl = { latencies: [], messages: 0 };   // read by tests and the bench
// Each mode's target on screen: range, step, default and unit; speed cap in km/h on screen,
// m/s in the command. The controller validates every value again (ranges, slew limits).
const MODES = {
  free: null,
  level: { min: 0, max: 10, step: 0.1, start: 5, unit: "" },
  erg: { min: 0, max: 1000, step: 10, start: 150, unit: "W" },
  sled: { min: 10, max: 500, step: 5, start: 80, unit: "kg" },
  parachute: { min: 0.1, max: 10, step: 0.1, start: 2, unit: "m² (S 1 · M 2 · L 3)" },
  "speed-cap": { min: 1, max: 40, step: 0.5, start: 10, unit: "km/h", toCommand: (v) => v / 3.6, fromState: (v) => v * 3.6 },
};

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
      if (!msg.ok && /sign in/.test(msg.error || "")) $("signin").hidden = false;
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
  if (typeof renderAthlete === "function") renderAthlete(s);   // athlete.js: name, level, class, bests
  $("machine").textContent = s.machine;
  const st = s.session.state;
  $("state").textContent = st; $("state").dataset.state = st;
  document.body.dataset.state = st;
  $("start").disabled = !(st === "ready" || st === "idle" || st === "finished");
  $("pause").disabled = st !== "running";
  $("resume").disabled = st !== "paused";
  $("stop").disabled = !(st === "running" || st === "paused");
  $("workout").disabled = st === "running" || st === "paused";
  // Always visible: the backward safety limit, and whether sessions are being stored.
  if (s.backward_cap_kmh !== undefined) $("safety-cap").textContent = `backward limit ${s.backward_cap_kmh} km/h`;
  const storage = s.storage || { ok: true, moved_aside: [] };
  const storageText = !storage.ok ? "STORAGE FAILING: " + (storage.problem || "")
    : storage.moved_aside && storage.moved_aside.length ? "damaged session database moved aside: " + storage.moved_aside.join(", ") : "";
  $("storage").hidden = !storageText; $("storage").textContent = storageText;
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
  renderStride(s);
  $("elapsed").textContent = fmtTime(s.elapsed_s);
  $("remaining").textContent = fmtTime(s.remaining_s);
  renderMode(s, st);
  renderSegment(s.segment);
  history.push([Date.now(), Math.abs(s.speed_kmh), Math.max(0, s.power_w ?? 0)]);
  while (history.length && history[0][0] < Date.now() - CHART_S * 1000) history.shift();
}

// Cadence, step length and left/right balance over the last steps; "—" and the reason on hover
// while no step rhythm is followed (docs/stride.md).
function renderStride(s) {
  const none = s.cadence_spm === null || s.cadence_spm === undefined;
  $("cadence").textContent = none ? "—" : Math.round(s.cadence_spm);
  $("step-length").textContent = none ? "—" : num(s.step_length_m, 2);
  $("balance").textContent = none || s.balance_left_pct === null
    ? "—" : `${num(s.balance_left_pct, 0)}/${num(100 - s.balance_left_pct, 0)}`;
  $("stride-sub").title = none ? (s.stride_reason || "") : "";
}

function shownTarget(mode, t) {
  const m = MODES[mode];
  if (!m || t === null || t === undefined) return null;
  const v = m.fromState ? m.fromState(t) : t;
  return Math.round(v / m.step) * m.step;
}

function targetText(mode, t) {
  const v = shownTarget(mode, t);
  if (v === null) return "—";
  const unit = { level: "", erg: " W", "speed-cap": " km/h", sled: " kg", parachute: " m²" }[mode] ?? "";
  return (mode === "erg" || mode === "sled" ? Math.round(v) : v.toFixed(1)) + unit;
}

function renderMode(s, st) {
  $("mode").textContent = s.mode;
  $("target").textContent = targetText(s.mode, s.target);
  for (const b of document.querySelectorAll(".pick")) b.setAttribute("aria-pressed", String(b.dataset.mode === s.mode));
  const m = MODES[s.mode], input = $("target-input");
  const off = !m || st === "finished";
  input.disabled = $("minus").disabled = $("plus").disabled = off;
  $("target-unit").textContent = m ? m.unit : "";
  $("lever").hidden = s.mode !== "level";
  if (m && document.activeElement !== input) {   // never overwrite what the operator is typing
    input.min = m.min; input.max = m.max; input.step = m.step;
    const v = shownTarget(s.mode, s.target);
    if (v !== null && input.dataset.shown !== String(v)) { input.value = String(Number(v.toFixed(2))); input.dataset.shown = String(v); }
  }
  if (s.mode === "level" && document.activeElement !== $("lever")) $("lever").value = String(s.target ?? 0);
}

function setTarget(mode, shown) {
  const m = MODES[mode];
  if (!m) { send({ name: "set-mode", mode }); return; }
  if (!Number.isFinite(shown)) { showMessage(`enter a number for the ${mode} target`); return; }
  const clamped = Math.min(m.max, Math.max(m.min, shown));
  const target = m.toCommand ? m.toCommand(clamped) : clamped;
  send({ name: "set-mode", mode, target: Math.round(target * 1000) / 1000 });
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
    $("sessions").replaceChildren();
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
  const m = state && MODES[state.mode];
  if (!m) return;
  const now = parseFloat($("target-input").value);
  const base = Number.isFinite(now) ? now : (shownTarget(state.mode, state.target) ?? m.start);
  setTarget(state.mode, Math.round((base + sign * m.step) * 100) / 100);
};
for (const b of document.querySelectorAll(".pick")) {
  // Picking a mode applies it at once: its current target if it is already running, else a gentle start.
  b.onclick = () => {
    const mode = b.dataset.mode, m = MODES[mode];
    const same = state && state.mode === mode ? shownTarget(mode, state.target) : null;
    setTarget(mode, m ? (same ?? m.start) : NaN);
  };
}
$("target-input").addEventListener("change", () => { if (state) setTarget(state.mode, parseFloat($("target-input").value)); });
$("target-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("target-input").blur(); });
$("lever").addEventListener("change", () => setTarget("level", parseFloat($("lever").value)));
$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ pin: $("pin").value }) });
  const body = await r.json();
  $("signin-error").textContent = r.ok ? "" : body.error;
  if (r.ok) { $("signin").hidden = true; $("pin").value = ""; showMessage(""); if (ws) ws.close(); }  // reconnect signed in
});
fetch("/api/session").then((r) => r.json()).then((who) => { $("signin").hidden = who.can_command; }).catch(() => {});
$("minus").onclick = () => step(-1);
$("plus").onclick = () => step(+1);
$("history").addEventListener("toggle", loadSessions);

loadWorkouts(); loadSessions(); connect(); requestAnimationFrame(drawChart);
