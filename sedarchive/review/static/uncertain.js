// The classifier's least-sure grains: one row per grain, a class picker, saved at once (POST /api/correction);
// a saved grain leaves the list and the next one's picker takes the focus, so the expert goes on one by one.
"use strict";

async function load() {
  const resp = await fetch("/api/uncertain?limit=50");
  const data = await resp.json();
  const model = document.getElementById("model");
  const list = document.getElementById("uncertain");
  list.replaceChildren();
  if (!data.model) {
    model.textContent = "no classifier yet: run sedarchive classify-train, then sedarchive classify";
    return;
  }
  const count = () => {
    model.textContent = `classifier ${data.model}, ${list.children.length} grains left to check`;
  };
  for (const g of data.grains) {
    const row = document.createElement("figure");
    row.className = "uncertain-grain";
    row.dataset.sample = g.sample;
    row.dataset.particle = g.particle;
    const img = document.createElement("img");
    img.src = `${g.image}?layer=all&side=96`;
    img.alt = `${g.sample} grain ${g.particle}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `${g.sample} #${g.particle}: ${g.class} (p = ${g.probability.toFixed(2)}) `;
    const pick = document.createElement("select");
    for (const c of data.classes) {
      const opt = document.createElement("option");
      opt.value = c;
      opt.textContent = c;
      opt.selected = c === g.class;
      pick.append(opt);
    }
    const save = document.createElement("button");
    save.textContent = "save";
    save.addEventListener("click", async () => {
      const r = await fetch("/api/correction", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({sample: g.sample, particle: g.particle, class: pick.value}),
      });
      const answer = await r.json();
      if (!r.ok) {
        save.textContent = `error: ${answer.error}`;
        return;
      }
      const next = row.nextElementSibling;
      row.remove();
      count();
      if (next) {
        next.querySelector("select").focus();
        next.scrollIntoView({block: "nearest"});
      }
    });
    caption.append(pick, save);
    row.append(img, caption);
    list.append(row);
  }
  count();
  const first = list.querySelector("select");
  if (first) first.focus();
}

load();
