// sedarchive review page: page through clusters, name / merge / exclude / split, saved at once.
(function () {
  "use strict";
  var PAGE = 60;
  var S = { state: null, index: 0, offset: 0, scale: null, moving: null };
  var SIDES = [64, 96, 128, 160, 200, 280];
  var BARS_UM = [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  var KEYS = { cut_off: "c", touching: "t", not_a_grain: "x", other: "o" };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") e.className = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function say(text, kind) { var s = $("status"); s.textContent = text; s.className = kind || ""; }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.statusText); return body; });
    });
  }
  function decide(decision) {
    say("saving…");
    return fetch("/api/decision", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(decision)
    }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.statusText); return body; });
    }).then(function (state) {
      var id = current() && current().id;
      S.state = state;
      var i = state.clusters.findIndex(function (c) { return c.id === id; });
      if (state.new_clusters && state.new_clusters.length) {
        i = state.clusters.findIndex(function (c) { return c.id === state.new_clusters[0]; });
      }
      S.index = Math.max(0, i);
      var advance = $("auto-advance").checked && ["name", "exclude", "merge"].indexOf(decision.action) >= 0;
      renderAll(!advance && (i < 0 || decision.action === "move" || (state.new_clusters && state.new_clusters.length)));
      say("saved " + describe(decision) + " · " + new Date().toLocaleTimeString(), "saved");
      if (advance) nextUndecided();
      return state;
    }).catch(function (err) { say("not saved: " + err.message, "error"); });
  }
  function describe(d) {
    if (d.action === "name") return "cluster " + d.cluster + " = " + d["class"];
    if (d.action === "merge") return "cluster " + d.clusters.join(", ") + " → " + d.into;
    if (d.action === "exclude") return "cluster " + d.cluster + " excluded (" + d.reason + ")";
    if (d.action === "split") return "cluster " + d.cluster + " split";
    if (d.action === "add_class") return "class " + d["class"];
    if (d.action === "move") return "grain " + d.particle + " of " + d.sample + " → " + (d.into < 0 ? "no cluster" : "cluster " + d.into);
    return d.action + " " + (d.cluster === undefined ? "" : d.cluster);
  }

  function current() { return S.state && S.state.clusters[S.index]; }
  function stateText(c) {
    if (c.root !== c.id) return ["merged into " + c.root + (c["class"] ? " (" + c["class"] + ")" : c.excluded ? " (excluded)" : ""), "merged"];
    if (c.excluded) return ["excluded: " + c.reason, "excluded"];
    if (c["class"]) return [c["class"], "named"];
    return ["not named", ""];
  }
  function decided(c) { return c.root !== c.id || c.excluded || !!c["class"]; }

  function renderList() {
    var list = $("cluster-list");
    list.textContent = "";
    S.state.clusters.forEach(function (c, i) {
      var st = stateText(c);
      var li = el("li", { "data-cluster": c.id, "class": i === S.index ? "active" : "" });
      li.appendChild(el("span", { "class": "cid" }, "#" + c.id));
      li.appendChild(el("span", { "class": "badge " + st[1] }, st[0]));
      li.appendChild(el("span", { "class": "n" }, c.size));
      li.addEventListener("click", function () { select(i); });
      list.appendChild(li);
    });
    var done = S.state.clusters.filter(decided).length;
    $("progress").textContent = done + "/" + S.state.clusters.length + " decided";
  }

  function renderCurrent() {
    var c = current();
    if (!c) { $("current-title").textContent = "no clusters in this archive yet"; return; }
    var st = stateText(c);
    $("current-title").textContent = "cluster " + c.id;
    $("current-state").textContent = st[0];
    $("current-state").className = "badge " + st[1];
    $("current-size").textContent = c.size + " grains" + (c.by ? " · " + c.by + " " + (c.at || "") : "");
    var box = $("class-buttons");
    box.textContent = "";
    S.state.classes.forEach(function (name, i) {
      var b = el("button", { type: "button", "class": "class-btn" + (c["class"] === name && c.root === c.id ? " current" : ""), "data-class": name });
      if (i < 9) b.appendChild(el("kbd", {}, String(i + 1)));
      b.appendChild(document.createTextNode(name));
      b.addEventListener("click", function () { decide({ action: "name", cluster: c.id, "class": name }); });
      box.appendChild(b);
    });
    var ex = $("exclude-buttons");
    ex.textContent = "";
    var keys = KEYS;
    S.state.reasons.forEach(function (reason) {
      var b = el("button", { type: "button", "class": "exclude-btn" + (c.excluded && c.reason === reason && c.root === c.id ? " current" : ""), "data-reason": reason });
      b.appendChild(el("kbd", {}, keys[reason] || ""));
      b.appendChild(document.createTextNode(reason.replace(/_/g, " ")));
      b.addEventListener("click", function () { decide({ action: "exclude", cluster: c.id, reason: reason }); });
      ex.appendChild(b);
    });
  }

  function renderProps() {
    var p = S.state.proportions, bars = $("prop-bars");
    bars.textContent = "";
    if (!p.total) { bars.appendChild(el("p", {}, "no cluster named yet")); return; }
    Object.keys(p.classes).forEach(function (name) {
      var n = p.classes[name], frac = n / p.total;
      var row = el("div", { "class": "bar", "data-class": name });
      row.appendChild(el("span", { "class": "name" }, name));
      var track = el("span", { "class": "track" }), fill = el("span", { "class": "fill" });
      fill.style.width = (100 * frac).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", { "class": "val" }, n + " (" + (100 * frac).toFixed(1) + "%)"));
      bars.appendChild(row);
    });
  }

  // true relative scale: every grain of a cluster is drawn at the same screen pixels per µm
  function chooseScale(largest) { return Math.min(4, Math.max(0.05, 150 / (largest || 150))); }
  function scaleBar(node, scale, unit) {
    var um = BARS_UM[0];
    BARS_UM.forEach(function (n) { if (n * scale <= 120) um = n; });
    node.textContent = "";
    var bar = el("span", { "class": "bar-line" });
    bar.style.width = Math.round(um * scale) + "px";
    node.appendChild(bar);
    node.appendChild(el("span", { "class": "bar-text" }, um + " " + (unit || "µm")));
    node.setAttribute("data-um", um);
    node.setAttribute("data-px", Math.round(um * scale));
  }
  function grainFigure(g, scale, extra) {
    var src = "/grain/" + encodeURIComponent(g.sample) + "/" + g.particle + ".jpg";
    var flag = g.chopped ? "chopped" : g.clump ? "clump" : "";
    var fig = el("figure", { "data-sample": g.sample, "data-particle": g.particle, "data-role": g.role || "" });
    if (flag) { fig.className = "flag"; fig.setAttribute("data-flag", flag); }
    var h = g.box_um && g.box_um[0] ? g.box_um[0] * scale : 96, w = g.box_um && g.box_um[1] ? g.box_um[1] * scale : 96;
    h = Math.max(6, Math.round(h)); w = Math.max(6, Math.round(w));
    var side = SIDES.find(function (x) { return x >= Math.max(h, w); }) || 280;
    var img = el("img", { src: src + "?layer=" + g.layer + "&side=" + side, alt: g.sample + " grain " + g.particle,
                          width: w, height: h,
                          title: g.sample + " · grain " + g.particle + (g.size !== null ? " · " + g.size + " " + g.unit : "") +
                                 (g.box_um && g.box_um[0] ? " · box " + g.box_um[0] + "×" + g.box_um[1] + " " + g.box_unit : "") + " · click: all layers" });
    img.style.width = w + "px"; img.style.height = h + "px";
    img.addEventListener("click", function () {
      $("zoom").querySelector("img").src = src + "?layer=all&side=200";
      $("zoom").querySelector("p").textContent = img.title.replace(" · click: all layers", "") + " · focal layers left to right (Esc closes)";
      $("zoom").hidden = false;
    });
    fig.appendChild(img);
    var tools = el("span", { "class": "tools" });
    var like = el("button", { type: "button", "class": "like", title: "grains like this one (nearest in the latent space)" }, "≈");
    like.addEventListener("click", function () { showSimilar(g); });
    var move = el("button", { type: "button", "class": "move", title: "move this grain out of its cluster" }, "⇥");
    move.addEventListener("click", function () { startMove(g); });
    tools.appendChild(like); tools.appendChild(move);
    fig.appendChild(tools);
    if (extra) fig.appendChild(extra);
    return fig;
  }
  function loadGrains(append) {
    var c = current();
    if (!c) return;
    if (!append) { S.offset = 0; S.scale = null; $("grains").textContent = ""; }
    getJSON("/api/cluster/" + c.id + "?offset=" + S.offset + "&limit=" + PAGE).then(function (page) {
      if (page.cluster !== (current() || {}).id) return;
      if (S.scale === null) {
        S.scale = chooseScale(page.largest_box_um);
        scaleBar($("scale-bar"), S.scale, (page.grains[0] || {}).box_unit);
      }
      var lastRole = S.offset ? "-" : null;
      page.grains.forEach(function (g) {
        if (g.role !== lastRole && g.role) {
          $("grains").appendChild(el("div", { "class": "role-head", "data-role": g.role },
            g.role === "typical" ? "most typical (nearest the centre)" : "most doubtful (far from the centre, or near another)"));
        } else if (g.role !== lastRole && lastRole === "doubtful") {
          $("grains").appendChild(el("div", { "class": "role-head", "data-role": "rest" }, "the others"));
        }
        lastRole = g.role;
        $("grains").appendChild(grainFigure(g, S.scale));
      });
      S.offset += page.grains.length;
      $("more").hidden = S.offset >= page.size;
    }).catch(function (err) { say(err.message, "error"); });
  }
  function showSimilar(g) {
    getJSON("/api/similar/" + encodeURIComponent(g.sample) + "/" + g.particle + "?k=24").then(function (res) {
      var box = $("similar-grains"), scale = S.scale || chooseScale(null);
      box.textContent = "";
      $("similar-title").textContent = "Grains like " + g.sample + " #" + g.particle + " (nearest first)";
      box.appendChild(grainFigure(g, scale, el("span", { "class": "cl query" }, "this one")));
      res.grains.forEach(function (n) {
        var tag = el("a", { href: "#", "class": "cl", "data-cluster": n.cluster, title: "go to this cluster" },
                     n.cluster < 0 ? "no cluster" : "#" + n.cluster);
        tag.addEventListener("click", function (ev) {
          ev.preventDefault();
          var i = S.state.clusters.findIndex(function (c) { return c.id === n.cluster; });
          if (i >= 0) select(i);
        });
        box.appendChild(grainFigure(n, scale, tag));
      });
      $("similar").hidden = false;
      $("similar").scrollIntoView({ block: "nearest" });
    }).catch(function (err) { say(err.message, "error"); });
  }
  function startMove(g) {
    S.moving = g;
    $("move-what").textContent = "grain " + g.particle + " of " + g.sample;
    $("move-form").hidden = false;
    $("move-into").value = "";
    $("move-into").focus();
  }

  function renderAll(reloadGrains) {
    $("archive-name").textContent = S.state.archive;
    $("who").textContent = "as " + S.state.user + " · " + S.state.grains + " grains";
    $("stale-labels").textContent = S.state.stale_labels || "";
    $("stale-labels").hidden = !S.state.stale_labels;
    renderList(); renderCurrent(); renderProps();
    if (reloadGrains) loadGrains(false);
  }
  function select(i) {
    if (!S.state || i < 0 || i >= S.state.clusters.length) return;
    S.index = i;
    renderList(); renderCurrent(); loadGrains(false);
    var li = document.querySelector("#cluster-list li.active");
    if (li) li.scrollIntoView({ block: "nearest" });
  }
  function nextUndecided() {
    var n = S.state.clusters.length;
    for (var k = 1; k <= n; k++) {
      var i = (S.index + k) % n;
      if (!decided(S.state.clusters[i])) return select(i);
    }
    say("every cluster is decided", "saved");
  }
  function merge() {
    var c = current(), into = parseInt($("merge-into").value, 10);
    if (!c || isNaN(into)) { say("type the cluster to merge into", "error"); $("merge-into").focus(); return; }
    decide({ action: "merge", clusters: [c.id], into: into });
  }

  $("prev").addEventListener("click", function () { select(S.index - 1); });
  $("next").addEventListener("click", function () { select(S.index + 1); });
  $("more").addEventListener("click", function () { loadGrains(true); });
  $("merge-form").addEventListener("submit", function (ev) { ev.preventDefault(); merge(); });
  $("split").addEventListener("click", function () { var c = current(); if (c) decide({ action: "split", cluster: c.id, n: 2 }); });
  $("clear").addEventListener("click", function () { var c = current(); if (c) decide({ action: "clear", cluster: c.id }); });
  $("add-class-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = $("new-class").value.trim();
    if (name) decide({ action: "add_class", "class": name }).then(function () { $("new-class").value = ""; });
  });
  $("move-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var g = S.moving, text = $("move-into").value.trim(), into = text === "" ? -1 : parseInt(text, 10);
    if (!g || isNaN(into)) { say("type the cluster to move the grain to (empty: out of every cluster)", "error"); return; }
    decide({ action: "move", sample: g.sample, particle: g.particle, into: into }).then(function (st) {
      if (st) { $("move-form").hidden = true; S.moving = null; }
    });
  });
  $("move-cancel").addEventListener("click", function () { $("move-form").hidden = true; S.moving = null; });
  $("similar-close").addEventListener("click", function () { $("similar").hidden = true; });
  $("zoom").addEventListener("click", function () { $("zoom").hidden = true; });
  $("help-toggle").addEventListener("click", function () { $("help").hidden = !$("help").hidden; });

  document.addEventListener("keydown", function (ev) {
    if (ev.target.tagName === "INPUT") { if (ev.key === "Escape") ev.target.blur(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !S.state) return;
    var c = current(), k = ev.key;
    var reasons = {};
    Object.keys(KEYS).forEach(function (r) { reasons[KEYS[r]] = r; });
    if (k === "Escape") { $("zoom").hidden = true; $("help").hidden = true; $("move-form").hidden = true; }
    else if (k >= "1" && k <= "9") { var name = S.state.classes[+k - 1]; if (c && name) decide({ action: "name", cluster: c.id, "class": name }); }
    else if (reasons[k]) { if (c) decide({ action: "exclude", cluster: c.id, reason: reasons[k] }); }
    else if (k === "j" || k === "ArrowRight") select(S.index + 1);
    else if (k === "k" || k === "ArrowLeft") select(S.index - 1);
    else if (k === "n") nextUndecided();
    else if (k === "a") $("auto-advance").checked = !$("auto-advance").checked;
    else if (k === "m") { if ($("merge-into").value) merge(); else $("merge-into").focus(); }
    else if (k === "s") { if (c) decide({ action: "split", cluster: c.id, n: 2 }); }
    else if (k === "u") { if (c) decide({ action: "clear", cluster: c.id }); }
    else if (k === " ") { if (!$("more").hidden) loadGrains(true); }
    else if (k === "?") $("help").hidden = !$("help").hidden;
    else return;
    ev.preventDefault();
  });

  getJSON("/api/state").then(function (state) {
    S.state = state;
    renderAll(true);
    say("ready: " + state.clusters.length + " clusters");
  }).catch(function (err) { say("cannot load: " + err.message, "error"); });
})();
