// The athlete's part of the console: sign-in from the gym's list (optionally with a PIN),
// name and level, class countdown and rank, personal-best announcements.
// Everything from the server is written with textContent: names are not markup.
"use strict";
const QUALITY_SHORT = { power: "P", speed: "S", endurance: "E", agility: "A" };
let pickedAthlete = null;

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

// "forward_200m_s" -> "200 m forward", "backward_power_10s_w" -> "10 s power backward", …
function bestLabel(key) {
  let m = key.match(/^(forward|backward)_(\d+)m_s$/);
  if (m) return `${m[2]} m ${m[1]}`;
  m = key.match(/^(forward|backward)_power_(\d+)s_w$/);
  if (m) return `${m[2] >= 60 ? m[2] / 60 + " min" : m[2] + " s"} power ${m[1]}`;
  m = key.match(/^(forward|backward)_sled_10m_kg$/);
  if (m) return `heaviest sled over 10 m ${m[1]}`;
  if (key === "backward_walk_m") return "longest backward walk";
  return key;
}
function bestValue(key, v) {
  if (v === null || v === undefined) return "—";
  if (key.endsWith("_s")) return v.toFixed(1) + " s";
  if (key.endsWith("_w")) return Math.round(v) + " W";
  if (key.endsWith("_kg")) return Math.round(v) + " kg";
  return Math.round(v) + " m";
}

function renderAthlete(s) {
  const a = s.athlete;
  const st = s.session ? s.session.state : "";
  $("athlete-name").textContent = a ? a.name : "No athlete signed in";
  $("athlete-level").hidden = !a;
  $("athlete-level").textContent = a ? "level " + a.level : "";
  $("athlete-levels").textContent = a ? Object.entries(a.levels).map(([q, l]) => `${QUALITY_SHORT[q] || q} ${l}`).join(" · ") : "";
  const recording = st === "running" || st === "paused";
  $("athlete-signin").hidden = !!a || recording;
  $("athlete-signout").hidden = !a || recording;
  const c = s.class;
  if (!c) { $("class-info").textContent = ""; $("class-rank").textContent = ""; }
  else {
    $("class-info").textContent = c.starts_in_s !== null && c.starts_in_s !== undefined
      ? `class ${c.id}: ${c.workout} starts in ${Math.max(0, Math.ceil(c.starts_in_s))} s`
      : `class ${c.id}: ${c.workout || ""}`;
    const r = c.rank;
    $("class-rank").textContent = r ? `${ordinal(r.rank)} of ${r.of}` + (r.status === "out" ? " (out)" : "") : "";
  }
  const pbs = s.personal_bests || [];
  $("pb").hidden = pbs.length === 0;
  $("pb").textContent = pbs.map((p) => `NEW PERSONAL BEST — ${bestLabel(p.key)}: ${bestValue(p.key, p.value)}` +
    (p.previous !== null ? ` (was ${bestValue(p.key, p.previous)})` : "")).join(" · ");
}

async function openPicker() {
  const dlg = $("athlete-picker");
  $("athlete-error").textContent = ""; $("athlete-pin-form").hidden = true; pickedAthlete = null;
  $("roster").replaceChildren();
  try {
    const r = await fetch("/api/athletes");
    const list = r.ok ? await r.json() : [];
    if (!list.length) $("athlete-error").textContent = "The gym's list of athletes has not arrived (is the hub running?)";
    for (const a of list) {
      const b = document.createElement("button");
      b.className = "btn pick athlete-choice"; b.type = "button"; b.setAttribute("role", "listitem");
      b.textContent = `${a.name} · level ${a.level}`;
      b.onclick = () => chooseAthlete(a);
      $("roster").appendChild(b);
    }
  } catch (e) { $("athlete-error").textContent = "cannot load the list of athletes"; }
  if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
}

function chooseAthlete(a) {
  pickedAthlete = a;
  if (a.pin_required) {
    $("athlete-pin-name").textContent = a.name; $("athlete-pin").value = "";
    $("athlete-pin-form").hidden = false; $("athlete-pin").focus();
  } else signInAthlete(a, null);
}

async function signInAthlete(a, pin) {
  const body = { athlete: a.id };
  if (pin !== null) body.pin = pin;
  try {
    const r = await fetch("/api/athletes/sign-in", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const res = await r.json();
    if (r.ok && res.ok) { $("athlete-picker").close(); return; }
    $("athlete-error").textContent = res.error || "sign-in refused";
  } catch (e) { $("athlete-error").textContent = "sign-in failed: no answer from the machine"; }
}

$("athlete-signin").onclick = openPicker;
$("athlete-signout").onclick = () => send({ name: "sign-out" });
$("athlete-cancel").onclick = () => $("athlete-picker").close();
$("athlete-pin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (pickedAthlete) signInAthlete(pickedAthlete, $("athlete-pin").value);
});
