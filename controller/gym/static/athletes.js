// The dashboard's list of athletes, each linking to their page (levels, bests, history).
"use strict";
(async () => {
  const list = document.getElementById("athlete-list");
  if (!list) return;
  try {
    const r = await fetch("/api/athletes");
    if (!r.ok) return;
    for (const a of await r.json()) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/athlete/${encodeURIComponent(a.id)}`;
      link.textContent = a.name;
      li.append(link);
      list.append(li);
    }
  } catch (e) { /* the list is optional on the dashboard */ }
})();
