/* The queue area's words (issue 4).
 *
 * - "Time to drain": a queue that is not shrinking has no finite ETA. The collector then leaves
 *   queue.drain_eta_s out and sends queue.draining = 0; this script writes "not draining" for
 *   it (and the ETA of the others) under the panel's title.
 * - A queue that cannot be read carries the reason on its sample (e.g. the statement time limit
 *   stopped the query, with the index to add); those reasons are listed above the queue panels.
 * Everything from the monitored systems (queue names, errors) is set with textContent.
 * Loaded after live.js, whose socket it shares (window.dashboardLive.socket).
 */
(function () {
  "use strict";

  var area = document.querySelector('section.area[data-area="queue"]');
  if (!area || !window.dashboardLive) return;
  var socket = window.dashboardLive.socket;
  var queues = {};     // name -> {draining, eta, error}

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

  function eta(s) {
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function render() {
    var names = Object.keys(queues).sort();
    var parts = [];
    names.forEach(function (n) {
      var q = queues[n];
      if (q.draining === 0) parts.push(n + ": not draining");
      else if (q.eta !== undefined && q.eta > 0) parts.push(n + ": " + eta(q.eta));
    });
    drainNote.textContent = parts.length ? parts.join(" · ") : "";
    var failing = names.filter(function (n) { return queues[n].error; });
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
      changed = true;
    });
    if (changed) render();
  }

  socket.on("samples", apply);
  fetch("/api/latest", { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : { samples: [] }; })
    .then(function (d) { apply(d.samples || []); })
    .catch(function () { /* the live samples fill it in */ });
})();
