/* The queue area's words (issue 4).
 *
 * - "Time to drain": a queue that is not shrinking has no finite ETA. The collector then leaves
 *   queue.drain_eta_s out and sends queue.draining = 0; this script writes "not draining" for
 *   it (and the ETA of the others) under the panel's title.
 * - A queue that cannot be read carries the reason on its sample (e.g. the statement time limit
 *   stopped the query, with the index to add); the reasons of every such queue, drawn or not,
 *   are listed above the queue panels (the server draws unreadable queues first).
 * - Only the busiest queues are drawn (live.js, issue 9): a note above the panels says how many
 *   of how many, and a table under them lists every queue with its figures now, busiest first;
 *   a queue's name there opens this page drawing that queue (its other parameters, e.g.
 *   ?host=, kept). The table is filled only while it is open, at most once a second.
 * Objects keyed by queue names are null-prototype ones: a queue may be called "constructor"
 * or "__proto__".
 * Everything from the monitored systems (queue names, errors) is set with textContent.
 * Loaded after live.js, whose socket it shares (window.dashboardLive.socket).
 */
(function () {
  "use strict";

  var area = document.querySelector('section.area[data-area="queue"]');
  if (!area || !window.dashboardLive) return;
  var socket = window.dashboardLive.socket;
  var queues = Object.create(null);     // name -> {draining, eta, error, pending, failed, age}

  var caption = document.querySelector("#panel-queue-drain figcaption");
  var drainNote = document.createElement("div");
  drainNote.className = "queue-drain-note";
  drainNote.id = "queue-drain-note";
  drainNote.setAttribute("role", "status");
  if (caption && caption.parentNode) caption.parentNode.insertBefore(drainNote, caption.nextSibling);

  var errors = document.createElement("div");
  errors.id = "queue-errors";
  errors.hidden = true;
  var panels = area.querySelector(".panels");
  area.insertBefore(errors, panels);

  var shownNote = document.createElement("p");
  shownNote.id = "queue-shown";
  shownNote.className = "queue-shown-note";
  shownNote.hidden = true;
  area.insertBefore(shownNote, panels);

  var table = document.createElement("details");
  table.id = "queue-table";
  table.className = "queue-table";
  var summary = document.createElement("summary");
  table.appendChild(summary);
  var tbl = document.createElement("table");
  tbl.className = "data";
  var head = tbl.createTHead().insertRow();
  ["queue", "pending", "failed (new)", "oldest pending", "time to drain", "drawn"].forEach(function (h, i) {
    var th = document.createElement("th");
    th.textContent = h;
    if (i && i < 5) th.className = "num";
    head.appendChild(th);
  });
  var tbody = tbl.createTBody();
  table.appendChild(tbl);
  area.appendChild(table);
  table.addEventListener("toggle", function () { if (table.open) renderTable(); });

  function eta(s) {
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function drawnView() { return window.dashboardLive.queues(); }
  function isDrawn(n) { var v = drawnView(); return !v || !!v.drawn[n]; }

  /* This page with other query parameters (host=...) kept and queue= replaced (or dropped). */
  function pageWith(queue) {
    var p = new URLSearchParams(window.location.search);
    if (queue === null) p.delete("queue"); else p.set("queue", queue);
    var qs = p.toString();
    return window.location.pathname + (qs ? "?" + qs : "");
  }

  function seconds(s) {
    if (s === undefined || s === null) return "–";
    return eta(s);
  }

  /* "Drawing the 10 busiest of 200 queues (jobs pending when the page opened) · redraw the
     busiest now · all 200 queues below". */
  var noteKey = null;
  function renderNote() {
    var v = drawnView();
    var total = Math.max(v ? v.total : 0, Object.keys(queues).length);
    var key = v ? [total, v.count, v.pinned].join(" ") : "none";
    if (key === noteKey) return;           // no DOM write while nothing changed
    noteKey = key;
    summary.textContent = "All queues (" + total + ")";
    while (shownNote.firstChild) shownNote.removeChild(shownNote.firstChild);
    if (!v || (!v.pinned && total <= v.limit)) { shownNote.hidden = true; return; }
    shownNote.hidden = false;
    var text = v.pinned
      ? "Drawing " + v.count + " chosen of " + total + " queues. "
      : "Drawing the " + v.count + " busiest of " + total + " queues (most jobs pending when the " +
        "charts were loaded); " + (total - v.count) + " more queues are in the table below. ";
    shownNote.appendChild(document.createTextNode(text));
    shownNote.setAttribute("data-drawn", String(v.count));
    shownNote.setAttribute("data-total", String(total));
    var a = document.createElement("a");
    if (v.pinned) {
      a.href = pageWith(null);
      a.textContent = "Draw the busiest instead";
    } else {
      a.href = "#queue-table";
      a.textContent = "Redraw the busiest now";
      a.addEventListener("click", function (e) { e.preventDefault(); window.dashboardLive.reload(); });
    }
    shownNote.appendChild(a);
  }

  var tableDrawnAt = 0, tableTimer = null, rowOf = Object.create(null);
  function renderTable() {
    if (!table.open) return;
    var wait = tableDrawnAt + 1000 - Date.now();
    if (wait > 0) {
      if (!tableTimer) tableTimer = setTimeout(function () { tableTimer = null; renderTable(); }, wait);
      return;
    }
    tableDrawnAt = Date.now();
    // The server's order: unreadable queues first, then the most jobs pending, then by name.
    var names = Object.keys(queues).sort(function (a, b) {
      return (!!queues[b].error - !!queues[a].error) ||
        ((queues[b].pending || 0) - (queues[a].pending || 0)) || (a < b ? -1 : a > b ? 1 : 0);
    });
    // Rows are kept and their cells updated in place: a table rebuilt every second would
    // swallow clicks on its links. Rows move only when the order changes.
    var order = names.map(function (n) {
      var q = queues[n], tr = rowOf[n];
      if (!tr) {
        tr = rowOf[n] = document.createElement("tr");
        tr.setAttribute("data-queue", n);
        var td = document.createElement("td"), link = document.createElement("a");
        link.href = pageWith(n);
        link.textContent = n;
        link.title = "Draw this queue";
        td.appendChild(link);
        tr.appendChild(td);
        for (var i = 0; i < 5; i++) {
          var c = document.createElement("td");
          if (i < 4) c.className = "num";
          tr.appendChild(c);
        }
      }
      [q.error ? "unreadable" : (q.pending === undefined ? "–" : String(Math.round(q.pending))),
       q.failed === undefined ? "–" : String(Math.round(q.failed)),
       seconds(q.age),
       q.draining === 0 ? "not draining" : (q.eta > 0 ? eta(q.eta) : "–"),
       isDrawn(n) ? "yes" : ""].forEach(function (text, i) {
        var cell = tr.cells[i + 1];
        if (cell.textContent !== text) cell.textContent = text;
      });
      return tr;
    });
    var same = order.length === tbody.rows.length &&
      order.every(function (tr, i) { return tbody.rows[i] === tr; });
    if (!same) tbody.replaceChildren.apply(tbody, order);
  }

  function render() {
    var all = Object.keys(queues).sort();
    var parts = [];
    all.filter(isDrawn).forEach(function (n) {
      var q = queues[n];
      if (q.draining === 0) parts.push(n + ": not draining");
      else if (q.eta !== undefined && q.eta > 0) parts.push(n + ": " + eta(q.eta));
    });
    drainNote.textContent = parts.length ? parts.join(" · ") : "";
    // Every unreadable queue's reason, drawn or not: the table only says "unreadable".
    var failing = all.filter(function (n) { return queues[n].error; });
    while (errors.firstChild) errors.removeChild(errors.firstChild);
    failing.forEach(function (n) {
      var p = document.createElement("p");
      p.className = "notice";
      var b = document.createElement("strong");
      b.textContent = n + ": ";
      p.appendChild(b);
      p.appendChild(document.createTextNode(queues[n].error));
      errors.appendChild(p);
    });
    errors.hidden = !failing.length;
    renderNote();
    renderTable();
  }

  function apply(samples) {
    var changed = false;
    samples.forEach(function (s) {
      if (s.source !== "queue" || !s.labels || !s.labels.queue || s.labels.priority) return;
      var q = queues[s.labels.queue] = queues[s.labels.queue] || {};
      var v = s.values || {};
      q.error = s.error || null;
      q.draining = v["queue.draining"];
      q.eta = v["queue.drain_eta_s"];
      q.pending = v["queue.pending"];
      q.failed = v["queue.failed_new"];
      q.age = v["queue.oldest_pending_age_s"];
      changed = true;
    });
    if (changed) render();
  }

  socket.on("samples", apply);
  document.addEventListener("dashboard:history", render);
  fetch("/api/latest", { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : { samples: [] }; })
    .then(function (d) { apply(d.samples || []); })
    .catch(function () { /* the live samples fill it in */ });
})();
