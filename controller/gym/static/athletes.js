// The dashboard's athletes and the coach's front desk: the list of athletes (each linking to
// their page), a new athlete, and starting a class on chosen machines. Text goes in with
// textContent; the hub checks every field again.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);

  async function loadAthletes() {
    const list = $("athlete-list");
    try {
      const r = await fetch("/api/athletes");
      if (!r.ok) return;
      list.replaceChildren();
      for (const a of await r.json()) {
        const li = document.createElement("li");
        const link = document.createElement("a");
        link.href = `/athlete/${encodeURIComponent(a.id)}`;
        link.textContent = a.name;
        li.append(link);
        list.append(li);
      }
    } catch (e) { /* the list is optional on the dashboard */ }
  }

  async function loadClassForm() {
    try {
      const workouts = await (await fetch("/api/workouts")).json();
      for (const w of workouts) {
        const o = document.createElement("option");
        o.value = w.name; o.textContent = w.title + (w.level ? ` (${w.level})` : "");
        $("nc-workout").append(o);
      }
      const machines = await (await fetch("/api/machines")).json();
      for (const m of machines) {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox"; box.value = m.name; box.checked = m.status === "online";
        label.append(box, document.createTextNode(" " + m.name));
        $("nc-machines").append(label);
      }
    } catch (e) { $("nc-result").textContent = "cannot load workouts or machines"; }
  }

  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: await r.text() }; }
    return [r.ok, data];
  }

  $("new-athlete").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: $("na-name").value };
    if ($("na-mass").value) body.body_mass_kg = parseFloat($("na-mass").value);
    if ($("na-pin").value) body.pin = $("na-pin").value;
    const [ok, data] = await post("/api/athletes", body);
    $("na-result").textContent = ok ? `added: ${data.id}` : (data.error || "refused");
    if (ok) { $("new-athlete").reset(); loadAthletes(); }
  });

  $("new-class").addEventListener("submit", async (e) => {
    e.preventDefault();
    const machines = [...$("nc-machines").querySelectorAll("input:checked")].map((b) => b.value);
    const [ok, data] = await post("/api/classes", { workout: $("nc-workout").value, machines,
                                                   at: "+" + ($("nc-in").value || "10") });
    const out = $("nc-result");
    out.replaceChildren();
    if (!ok) { out.textContent = data.error || "refused"; return; }
    const refused = data.machines.filter((m) => !m.ok);
    const link = document.createElement("a");
    link.href = `/class/${encodeURIComponent(data.id)}`;
    link.textContent = `class ${data.id}: leaderboard`;
    out.append(link, document.createTextNode(refused.length
      ? ` — refused: ${refused.map((m) => `${m.machine} (${m.error})`).join(", ")}` : ""));
  });

  loadAthletes();
  loadClassForm();
})();
