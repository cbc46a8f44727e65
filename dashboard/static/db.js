/* The database area's live lists (issue 3).
 *
 * - Pool gauge: from the `samples` events (the unlabelled `db` sample of each tick).
 * - Running now and top statements: first from GET /api/db/statements, then from the Socket.IO
 *   event `db_statements` ({now?, top?: {"5m", "1h", "today"}, source, source_note, notices}).
 * - Every text from the database (SQL, users, hosts, schemas) is set with textContent: a
 *   statement containing markup shows as text, never as HTML.
 * Loaded after live.js, whose socket it shares (window.dashboardLive.socket).
 */
(function () {
  "use strict";

  var root = document.getElementById("db-extras");
  if (!root || !window.dashboardLive) return;
  var socket = window.dashboardLive.socket;
  var endpoint = root.getAttribute("data-endpoint");
  var state = { window: "1h", sort: "total_ms", desc: true, top: {}, gen: 0 };

  function el(id) { return document.getElementById(id); }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  // One formatter per precision: toLocaleString with options builds a new one at every call.
  var formats = {};
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    var d = digits === undefined ? 1 : digits;
    var f = formats[d] || (formats[d] = new Intl.NumberFormat(undefined, { maximumFractionDigits: d }));
    return f.format(Number(v));
  }

  /* The lists change a few rows at a time (pushed every second while statements run): a row
     whose data is the same stays as it is, so the page restyles and repaints only what changed
     (issue 19). build(item) makes a row; key(item) is what it shows. */
  function syncRows(body, items, key, build) {
    for (var i = 0; i < items.length; i++) {
      var k = key(items[i]), tr = body.rows[i];
      if (tr && tr.dashboardKey === k) continue;
      var fresh = build(items[i]);
      fresh.dashboardKey = k;
      if (tr) body.replaceChild(fresh, tr); else body.appendChild(fresh);
    }
    while (body.rows.length > items.length) body.deleteRow(items.length);
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  function setHidden(node, hidden) { if (node.hidden !== hidden) node.hidden = hidden; }

  /* ---- pool gauge ---- */
  function updateGauge(sample) {
    var v = sample.values, fill = el("db-gauge-fill"), text = el("db-gauge-text");
    var panel = el("db-gauge-panel");
    if (sample.error || v["db.up"] === 0) {
      panel.classList.add("down");
      el("db-gauge-value").textContent = "down";
      text.textContent = "Database unreachable: " + (sample.error || "no answer");
      return;
    }
    panel.classList.remove("down");
    var pct = v["db.pool_utilization"];
    if (pct === undefined) return;
    fill.style.transform = "scaleX(" + (Math.max(0, Math.min(pct, 100)) / 100).toFixed(4) + ")";
    fill.className = "gauge-fill" + (pct > 95 ? " crit" : pct > 80 ? " warn" : "");
    el("db-gauge").setAttribute("aria-valuenow", pct.toFixed(1));
    el("db-gauge-value").textContent = pct.toFixed(1) + " %";
    text.textContent = num(v["db.threads_connected"], 0) + " of " + num(v["db.pool_capacity"], 0) +
      " connections open · " + num(v["db.threads_running"], 0) + " running" +
      (v["db.refused_connections"] > 0 ? " · " + num(v["db.refused_connections"], 0) + " refused" : "");
  }

  socket.on("samples", function (batch) {
    for (var i = batch.length - 1; i >= 0; i--) {
      var s = batch[i];
      if (s.source === "db" && (!s.labels || !Object.keys(s.labels).length)) {
        held.gauge = s;
        show();
        return;
      }
    }
  });

  /* ---- running now ---- */
  function renderNow(now) {
    var err = el("db-now-error"), body = el("db-now-table").tBodies[0];
    setHidden(err, !now.error);
    setText(err, now.error || "");
    syncRows(body, now.rows, function (r) {
      return JSON.stringify([r.id, r.user, r.host, r.schema, num(r.seconds, 1), r.state, r.statement]);
    }, function (r) {
      var tr = document.createElement("tr");
      cell(tr, r.id, "num"); cell(tr, r.user); cell(tr, r.host); cell(tr, r.schema);
      cell(tr, num(r.seconds, 1), "num"); cell(tr, r.state); cell(tr, r.statement, "sql");
      return tr;
    });
    setText(el("db-now-count"), now.error ? "–" : String(now.rows.length));
    setHidden(el("db-now-empty"), !!now.rows.length || !!now.error);
    setHidden(el("db-now-table"), !now.rows.length);
  }

  /* ---- top statements ---- */
  var FLAG_TEXT = { new_and_slow: "new & slow", slow: "slow", regressed: "2× slower" };

  function renderStatus(p) {
    var src = el("db-source");
    setText(src, "Source: " + (p.source || "–") + (p.source_note ? " — " + p.source_note : ""));
    if (src.getAttribute("data-source") !== (p.source || "")) src.setAttribute("data-source", p.source || "");
    var box = el("db-notices"), notices = JSON.stringify(p.notices || []);
    if (box.dashboardKey === notices) return;
    box.dashboardKey = notices;
    box.textContent = "";
    (p.notices || []).forEach(function (n) {
      var d = document.createElement("p");
      d.className = "notice";
      d.textContent = n;
      box.appendChild(d);
    });
  }

  function sortRows(rows) {
    var k = state.sort, sign = state.desc ? -1 : 1;
    return rows.slice().sort(function (a, b) {
      var x = a[k] === null ? -Infinity : a[k], y = b[k] === null ? -Infinity : b[k];
      return x < y ? -sign : x > y ? sign : 0;
    });
  }

  function renderTop() {
    var t = state.top[state.window];
    var body = el("db-top-table").tBodies[0];
    if (!t) { syncRows(body, [], null, null); return; }
    syncRows(body, sortRows(t.rows), JSON.stringify, function (r) {
      var tr = document.createElement("tr");
      var td = cell(tr, "", "sql");
      var code = document.createElement("code");
      code.textContent = r.text;
      td.appendChild(code);
      (r.flags || []).forEach(function (f) {
        var b = document.createElement("span");
        b.className = "flag flag-" + f;
        b.textContent = FLAG_TEXT[f] || f;
        if (f === "regressed" && r.baseline_avg_ms !== undefined) {
          b.title = "last hour's average is at least twice the previous 24 h's (" + num(r.baseline_avg_ms, 2) + " ms)";
        }
        td.appendChild(b);
      });
      if (r.schema) td.title = "schema " + r.schema;
      cell(tr, num(r.calls, 0), "num"); cell(tr, num(r.total_ms, 0), "num");
      cell(tr, num(r.share_pct, 1) + " %", "num"); cell(tr, num(r.avg_ms, 2), "num");
      cell(tr, num(r.max_ms, 1), "num"); cell(tr, num(r.rows_examined, 0), "num");
      cell(tr, num(r.rows_sent, 0), "num");
      return tr;
    });
    setHidden(el("db-top-empty"), !!t.rows.length);
    setHidden(el("db-top-table"), !t.rows.length);
    var mins = Math.round(t.span_s / 60);
    setText(el("db-top-summary"), num(t.calls, 0) + " statements, " + num(t.total_ms / 1000, 1) +
      " s in total, " + (t.avg_ms === null ? "–" : num(t.avg_ms, 2) + " ms") + " on average" +
      (state.window !== "today" && t.span_s < ({ "5m": 300, "1h": 3600 })[state.window] - 30
        ? " (window covers " + mins + " min so far)" : ""));
    Array.prototype.forEach.call(root.querySelectorAll("[data-sort]"), function (b) {
      var on = b.getAttribute("data-sort") === state.sort;
      var sort = on ? (state.desc ? "descending" : "ascending") : "none";
      b.classList.toggle("sorted", on);
      if (b.getAttribute("aria-sort") !== sort) b.setAttribute("aria-sort", sort);
    });
  }

  /* What arrived is drawn while the area is in view; out of view, the newest of each part is held
     and drawn as the area comes into view: at 1080p it is below the fold, and its lists and gauge
     changed the page there every second (issue 19). */
  var held = {}, box = root.getBoundingClientRect();
  // Then as the observer says; without one, always drawn.
  var inView = !window.IntersectionObserver || (box.bottom > 0 && box.top < window.innerHeight);
  if (window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      inView = entries[entries.length - 1].isIntersecting;
      show();
    }).observe(root);
  }

  function apply(p) {
    if (p.source !== undefined) held.status = p;
    if (p.now) held.now = p.now;
    if (p.top) {
      if (p.top.window) { state.top[p.top.window] = p.top; } else { state.top = p.top; }
      held.top = true;
    }
    show();
  }

  function show() {
    if (!inView) return;
    var h = held;
    held = {};
    if (h.gauge) updateGauge(h.gauge);
    if (h.status) renderStatus(h.status);
    if (h.now) renderNow(h.now);
    if (h.top) renderTop();
  }

  function load() {
    var gen = ++state.gen;
    fetch(endpoint + "?window=" + encodeURIComponent(state.window) + "&limit=30", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (p) { if (gen === state.gen) apply(p); })
      .catch(function (e) { console.error("db statements:", e); });
  }

  Array.prototype.forEach.call(root.querySelectorAll("[data-db-window]"), function (b) {
    b.addEventListener("click", function () {
      Array.prototype.forEach.call(root.querySelectorAll("[data-db-window]"), function (o) {
        o.classList.toggle("active", o === b); o.setAttribute("aria-pressed", String(o === b));
      });
      state.window = b.getAttribute("data-db-window");
      renderTop();
      load();
    });
  });
  Array.prototype.forEach.call(root.querySelectorAll("[data-sort]"), function (b) {
    b.addEventListener("click", function () {
      var k = b.getAttribute("data-sort");
      state.desc = k === state.sort ? !state.desc : true;
      state.sort = k;
      renderTop();
    });
  });

  socket.on("db_statements", apply);
  socket.on("connect", load);          // after a reconnect the pushes we missed are not replayed
  window.dashboardDb = { state: state };
  load();
})();
