/* Live page: the alert bar (counts by severity, critical stands out, the firing alerts) and
 * shaded breach periods on the charts of the panels whose rule fired.
 *
 * - /api/alerts gives active and recent alerts; the Socket.IO `alert` event (namespace /live,
 *   the socket live.js opened) updates the counts at once and refetches the list.
 * - Breach periods are Plotly rect shapes (named "alert-breach") added next to the threshold
 *   lines; they are re-applied when live.js redraws the charts (data-charts-drawn changes) and
 *   every 15 s, so a breach still going on keeps reaching "now".
 * - Everything from monitored systems is written with textContent, never innerHTML.
 */
(function () {
  "use strict";

  var bar = document.getElementById("alert-bar");
  var live = window.dashboardLive;
  if (!bar || !live) return;
  var cfg = JSON.parse(document.getElementById("page-config").textContent);
  var SHADE = { critical: "rgba(255,82,82,0.16)", warning: "rgba(255,179,0,0.13)" };
  var panelsByRule = {};
  cfg.panels.forEach(function (p) {
    if (p.rule) (panelsByRule[p.rule] = panelsByRule[p.rule] || []).push(p.id);
  });
  var last = null;          // the last /api/alerts answer
  var loading = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function labelsText(labels) {
    return Object.keys(labels || {}).sort().map(function (k) { return k + "=" + labels[k]; }).join(", ");
  }

  function fmt(v, unit) {
    if (v === null || v === undefined || isNaN(v)) return "";
    var d = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    return (+v.toFixed(d)) + (unit === "%" ? " %" : unit ? " " + unit : "");
  }

  function renderCounts(counts) {
    var crit = counts.critical || 0, warn = counts.warning || 0;
    bar.hidden = false;
    bar.classList.toggle("has-critical", crit > 0);
    bar.classList.toggle("has-warning", crit === 0 && warn > 0);
    bar.classList.toggle("all-clear", crit === 0 && warn === 0);
    bar.setAttribute("data-critical", String(crit));
    bar.setAttribute("data-warning", String(warn));
    var c = bar.querySelector(".count-critical"), w = bar.querySelector(".count-warning");
    if (c) { c.textContent = crit + " critical"; c.classList.toggle("on", crit > 0); }
    if (w) { w.textContent = warn + " warning"; w.classList.toggle("on", warn > 0); }
  }

  function render(d) {
    while (bar.firstChild) bar.removeChild(bar.firstChild);
    bar.appendChild(el("span", "count count-critical"));
    bar.appendChild(el("span", "count count-warning"));
    var list = el("ul");
    d.active.slice(0, 6).forEach(function (a) {
      var li = el("li", "sev-" + a.severity);
      var link = el("a", null, a.title + (Object.keys(a.labels).length ? " (" + labelsText(a.labels) + ")" : "") +
                    (/_down$/.test(a.rule) ? "" : " " + fmt(a.value, a.unit)) + (a.acked_at ? " · ack" : ""));
      link.href = "/alerts#alert-" + encodeURIComponent(a.id);
      li.appendChild(link);
      list.appendChild(li);
    });
    if (d.active.length > 6) list.appendChild(el("li", null, "+" + (d.active.length - 6) + " more"));
    if (!d.active.length) list.appendChild(el("li", "muted", "No alert is firing"));
    bar.appendChild(list);
    d.channels.forEach(function (ch) {
      if (ch.state === "failed_permanently") {
        bar.appendChild(el("span", "count count-critical on", "channel " + ch.channel + " failing"));
      }
    });
    var all = el("a", "all", "Alerts page →");
    all.href = "/alerts";
    bar.appendChild(all);
    renderCounts(d.counts);
  }

  function shade() {
    // A fixed window (/?from=&to=) is shaded by live.js with the alerts of that window.
    if (!last || live.fixed) return;
    var charts = live.charts();
    var nowMs = Date.now();
    // Shapes count in Plotly's autorange: clip them to the window so an old breach never
    // stretches the time axis.
    var startMs = nowMs - ((live.state && live.state.windowS) || 900) * 1000;
    var byPanel = {};
    last.active.concat(last.recent).forEach(function (a) {
      var x1 = a.resolved_at ? a.resolved_at * 1000 : nowMs;
      if (x1 < startMs) return;
      (panelsByRule[a.rule] || []).forEach(function (pid) {
        (byPanel[pid] = byPanel[pid] || []).push({
          type: "rect", name: "alert-breach", xref: "x", yref: "paper", layer: "below",
          x0: Math.max(a.started_at * 1000, startMs), x1: x1, y0: 0, y1: 1,
          fillcolor: SHADE[a.peak_severity] || SHADE.warning, line: { width: 0 }
        });
      });
    });
    var jobs = [];
    Object.keys(charts).forEach(function (pid) {
      var div = charts[pid].div;
      if (!div || !div.layout) return;
      var base = (div.layout.shapes || []).filter(function (s) { return s.name !== "alert-breach"; });
      var mine = byPanel[pid] || [];
      var had = (div.layout.shapes || []).length - base.length;
      if (!mine.length && !had) return;
      jobs.push([div, base.concat(mine), mine.length]);
    });
    // A relayout redraws a whole chart (10-20 ms): one chart per animation frame, so shading
    // several charts never makes one long task (bench/page_endurance.py saw up to 370 ms).
    var idle = !relayouts.length;
    relayouts = jobs;                 // the newest shading replaces any not applied yet
    if (idle && jobs.length) requestAnimationFrame(relayoutNext);
  }

  var relayouts = [];
  function relayoutNext() {
    var job = relayouts.shift();
    if (!job) return;
    if (job[0].layout) {              // not purged by a history reload meanwhile
      Plotly.relayout(job[0], { shapes: job[1] });
      job[0].setAttribute("data-breaches", String(job[2]));
    }
    if (relayouts.length) requestAnimationFrame(relayoutNext);
  }

  // A question asked while an answer is on its way is asked again once it arrives: that answer
  // may predate what prompted the question (an alert that resolved meanwhile), and taking it
  // would leave the bar stale until the next alert anywhere.
  var askAgain = false;
  function load() {
    if (loading) { askAgain = true; return loading; }
    var windowS = Math.max((live.state && live.state.windowS) || 900, 3600);
    loadedWindow = windowS;
    loading = fetch("/api/alerts?history_s=" + windowS, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("alerts: HTTP " + r.status); return r.json(); })
      .then(function (d) { last = d; render(d); shade(); })
      .catch(function (e) { console.error(e); })
      .then(function () {
        loading = null;
        if (askAgain) { askAgain = false; load(); }
      });
    return loading;
  }

  var pendingLoad = null;
  live.socket.on("alert", function (ev) {
    if (ev && ev.counts) renderCounts(ev.counts);
    if (!pendingLoad) pendingLoad = setTimeout(function () { pendingLoad = null; load(); }, 300);
  });
  live.socket.on("connect", load);
  var loadedWindow = 0;
  new MutationObserver(function () {
    // A longer window was chosen: fetch the longer history; else just shade the new charts.
    if (((live.state && live.state.windowS) || 900) > loadedWindow) load(); else shade();
  })
    .observe(document.body, { attributes: true, attributeFilter: ["data-charts-drawn"] });
  setInterval(shade, 15000);
  load();
})();
