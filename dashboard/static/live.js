/* The live page: history first (one HTTP request), then Socket.IO samples extend each chart.
 *
 * - Every chart keeps its window's points, and in a raw window at most the x axis' lead more
 *   (see slide): no unbounded arrays.
 * - The client keeps the last sequence number it applied; after any (re)connect it sends
 *   `resume {after_seq}` and applies what the server answers before live samples continue.
 * - A gap longer than three sampling intervals is drawn as a gap (a null point), never bridged.
 * - A hidden tab draws nothing; it buffers and catches up in one batch when shown again.
 * - Receiving is not drawing: samples are queued per chart as they arrive, and a chart is redrawn
 *   (one move for all it has queued) at most once a second, only while it is on screen, a few
 *   charts per animation frame (MOVES_PER_FRAME). Plotly redraws a whole chart on every
 *   extendTraces (8-15 ms on a 2-core machine, however few the new points): redrawing every chart
 *   at every tick made a page sampling at 0.1 s fall behind and lose its socket
 *   (bench/page_endurance.py).
 * - A chart's axes move in steps (xStep, yKept); between them its newest seconds are drawn outside
 *   Plotly, as a tail from the end of Plotly's line (drawTails), and Plotly draws only at the
 *   steps: a wall screen's charts cost half as much (issue 19).
 * - Below a 1 s interval a trace gets at most about one point a second, the same number of
 *   points as a 1 s installation (the value beside the title still shows every sample).
 * - Queue panels draw the queues the history answer names (h.queues.shown: the busiest by jobs
 *   pending, or those asked for with ?queue=NAME); samples of the others are not drawn (queues.js
 *   lists every queue in a table). 200 queues drawn in 5 panels took seconds to open.
 * - /?from=EPOCH&to=EPOCH (the link in a page, issue 18) is a fixed window: its history only
 *   (/api/history?until=), no live sample is appended and no resume asked, the alerts whose span
 *   meets it (/api/alerts/window) shaded on every chart, and a "back to live" link above.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("page-config").textContent);
  var RAW_MAX_WINDOW_S = 3600;
  var REDRAW_EVERY_MS = 1000;     // a chart on screen moves once a second
  // Charts due move a few at a time: MOVES_PER_FRAME a frame (fewer past MOVE_BUDGET_MS of
  // synchronous drawing, e.g. extendTraces in a rollup window), then the next frame. A move's work
  // is mostly not in this callback: Plotly.animate computes the figure in microtasks after it and
  // draws the axes in the next frame, so a time budget here let every due chart move in one frame
  // and, at 33 charts, the frame after it held every chart's axes (tasks of 100-700 ms, issue 19).
  // One chart a frame costs the other way: every frame pays the whole page's style, paint and
  // compositing (busy x1.3-1.7 at the wall). A chart drawn whole (its first drawing or a new
  // trace: 40-130 ms) has a frame to itself.
  var MOVES_PER_FRAME = 3, MOVE_BUDGET_MS = 12;
  var PLOT_STEP_MS = (cfg.interval_s || 1) < 1 ? 950 : 0;  // thinning below 1 s (see above)
  var COLORS = ["#4fc3f7", "#ffb74d", "#81c784", "#ba68c8", "#f06292", "#e0e0e0", "#fff176", "#4db6ac"];
  var SEVERITY_COLORS = { warning: "#ffb300", critical: "#ff5252", target: "#66bb6a" };

  var fixed = cfg.fixed || null;   // {from, to} epoch seconds: a fixed past window, not live
  var shades = [];                 // alerts shaded in a fixed window: {x0, x1, severity, title}
  var state = {
    windowS: fixed ? fixed.to - fixed.from : 900,
    resolution: "raw",
    lastSeq: 0,
    lastSampleTs: 0,          // newest sample time seen (seconds)
    everConnected: false,
    connected: false,
    ready: false,             // history drawn and resume answered
    pending: [],              // live samples that arrived while not ready
    hidden: [],               // samples that arrived while the tab was hidden
    hiddenOverflow: false,
    generation: 0             // bumps on every history reload, to drop stale answers
  };

  var metricPanels = {};      // metric -> [panel]
  var charts = {};            // panel id -> {panel, div, traces: {key: {index, lastX}}, count}
  cfg.panels.forEach(function (p) {
    p.metrics.forEach(function (m) { (metricPanels[m] = metricPanels[m] || []).push(p); });
  });

  function seriesKey(metric, labels) {
    var names = Object.keys(labels || {}).sort();
    if (!names.length) return metric;
    return metric + "{" + names.map(function (k) { return k + '="' + labels[k] + '"'; }).join(",") + "}";
  }

  /* Host panels show one host: this dashboard's own (no "host" label) or, with ?host=NAME,
     one agent's (label host=NAME), as linked from the fleet view. */
  var params = new URLSearchParams(window.location.search);
  var hostFilter = params.get("host");
  var pinnedQueues = params.getAll("queue");
  // drawn is keyed by queue names from Redis/SQL: a null-prototype object, so "constructor"
  // is not already drawn and "__proto__" is a name like any other.
  var queueView = null;       // {shown: [names], drawn: {name: true}, count, total, limit, pinned}
  function wanted(metric, labels) {
    if (metric.lastIndexOf("host.", 0) !== 0) {
      var q = labels && labels.queue;
      if (q === undefined || !queueView || queueView.drawn[q]) return true;
      // Fewer queues drawn than the limit (a queue that appeared after the page opened): draw it.
      if (queueView.pinned || queueView.count >= queueView.limit) return false;
      queueView.drawn[q] = true; queueView.count++;
      return true;
    }
    var h = labels && labels.host;
    return hostFilter ? h === hostFilter : !h;
  }

  /* Plotly reads <a href>, <span style>, <b>... in trace names: label values come from the
     monitored systems (queue names, mounts, probes), so they are shown as text, never markup. */
  function plotlyText(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  /* A panel with "match" ({server: "replica1"}) draws only the series with those labels. */
  function matches(panel, labels) {
    var m = panel.match || {};
    return Object.keys(m).every(function (k) { return labels && labels[k] === m[k]; });
  }

  function traceName(panel, metric, labels) {
    var base = (panel.names && panel.names[metric]) || metric;
    var vals = Object.keys(labels || {}).sort().filter(function (k) { return k !== "host"; })
      .map(function (k) { return plotlyText(labels[k]); });
    if (!vals.length) return base;
    return (panel.metrics.length > 1 || (panel.names && panel.names[metric])) ? base + " " + vals.join(" ") : vals.join(" ");
  }

  function intervalOf(source) { return (cfg.sources && cfg.sources[source]) || cfg.interval_s || 1; }

  function gapMs(source) {
    if (state.resolution !== "raw") return 180000;
    return Math.max(3 * intervalOf(source), 3) * 1000;
  }

  function maxPoints(windowS) {
    var w = windowS || state.windowS;
    if (state.resolution !== "raw") return Math.ceil(w / 60) + 10;
    var every = Math.max(Math.min(cfg.interval_s || 1, 1), PLOT_STEP_MS / 1000);
    return Math.ceil(w / every * 1.1) + 10;
  }

  function formatValue(v, unit) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    if (unit === "B/s") {
      var u = ["B/s", "kB/s", "MB/s", "GB/s"], i = 0;
      while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
      return v.toFixed(v < 10 ? 1 : 0) + " " + u[i];
    }
    var digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    return v.toFixed(digits) + (unit ? (unit === "%" ? " %" : " " + unit) : "");
  }

  function layoutFor(panel) {
    var shapes = [], annotations = [];
    (panel.lines || []).forEach(function (l) {
      var color = SEVERITY_COLORS[l.severity] || "#999";
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: l.value, y1: l.value,
                    line: { color: color, width: 1, dash: "dash" } });
      annotations.push({ xref: "paper", x: 1, xanchor: "right", y: l.value, yanchor: "bottom",
                         text: l.label, showarrow: false, font: { size: 10, color: color } });
    });
    var yaxis = { gridcolor: "#2a2f3a", zerolinecolor: "#2a2f3a", fixedrange: true,
                  ticksuffix: panel.unit === "%" ? "%" : "" };
    // No automargin: the left margin (48 px) holds the longest label ("150kB/s"), and the labels
    // are not measured again at every move (issue 19).
    if (panel.unit === "B/s") { yaxis.tickformat = ".2s"; yaxis.ticksuffix = "B/s"; }
    if (panel.y_max) { yaxis.range = [0, panel.y_max]; } else { yaxis.rangemode = "tozero"; }
    var xaxis = { type: "date", gridcolor: "#2a2f3a", fixedrange: true };
    if (fixed) {
      xaxis.range = [fixed.from * 1000, fixed.to * 1000];
      shades.forEach(function (a) {
        var color = SEVERITY_COLORS[a.severity] || "#999";
        shapes.push({ type: "rect", xref: "x", yref: "paper", x0: a.x0, x1: a.x1, y0: 0, y1: 1,
                      fillcolor: color, opacity: a.panel === panel.id ? 0.22 : 0.1, layer: "below",
                      line: { width: 0 }, name: "alert " + a.id });
      });
    }
    return {
      margin: { l: 48, r: 12, t: 18, b: 28 }, height: 190,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: "#c9d1d9", size: 11 },
      xaxis: xaxis,
      yaxis: yaxis, shapes: shapes, annotations: annotations,
      // Plotly shows the legend only when a panel has more than one trace.
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10 },
                bgcolor: "rgba(0,0,0,0)" },
      hovermode: "x unified", uirevision: "keep"
    };
  }

  function newTrace(panel, metric, labels, n) {
    return { x: [], y: [], type: "scatter", mode: "lines",
             name: traceName(panel, metric, labels), connectgaps: false,
             line: { width: 1.6, color: COLORS[n % COLORS.length] },
             hovertemplate: "%{y:.2f}<extra>%{fullData.name}</extra>" };
  }

  var PLOT_CONFIG = { displayModeBar: false, responsive: true };

  /* An axis move ends in the next animation frame, where Plotly lays the chart out again; a chart
     purged before that frame threw "Cannot read properties of undefined (reading '_plots')" (seen
     once in a test switching windows). New history is drawn once no move is in flight, or after
     MOVE_WAIT_FRAMES frames whatever happens (a move Plotly interrupts may never settle). */
  var MOVE_WAIT_FRAMES = 30;
  function movesSettled() {
    return new Promise(function (resolve) {
      var frames = 0;
      (function check() {
        for (var id in charts) {
          if (charts[id].moving > 0 && frames++ < MOVE_WAIT_FRAMES) return requestAnimationFrame(check);
        }
        resolve();
      })();
    });
  }

  /* Draw every panel from a history answer: {series: {key: {metric, labels, t, v}}}.
     A panel without history is plotted when its first sample arrives: an empty Plotly chart
     costs as much to build as a full one (40-130 ms each in headless Chromium), and with the
     areas a site does not monitor (22 of 28 panels for a host-only set-up) that doubled the
     time to the first drawn chart.
     Charts in view are drawn at once and the page is marked
     data-charts-drawn; those below the fold follow, one per animation frame, and the page is
     marked data-charts-all-drawn after the last. At a large installation (19 charts with
     history, 25-40 ms each) drawing all of them in one task held the page for ~0.7 s. */
  var later = [];             // charts with history still to draw, in page order
  var viewLeft = 0;           // of them, charts in view at the start (drawn first)
  function drawHistory(history) {
    Object.keys(charts).forEach(function (id) { if (charts[id].plotted) Plotly.purge(charts[id].div); });
    charts = {};
    dirty = [];
    later = [];
    var inView = [];
    document.body.removeAttribute("data-charts-all-drawn");
    cfg.panels.forEach(function (panel) {
      var div = document.getElementById("chart-" + panel.id);
      if (!div) return;
      // windowS: the window this chart was drawn for (a click on another one changes
      // state.windowS before the new history replaces the charts).
      var chart = { panel: panel, div: div, traces: {}, count: 0, pend: null, added: [],
                    lastDraw: 0, queued: false, windowS: state.windowS, moving: 0 };
      var data = [], bands = [];
      Object.keys(history.series).sort().forEach(function (key) {
        var s = history.series[key];
        if (panel.metrics.indexOf(s.metric) < 0 || !wanted(s.metric, s.labels) ||
            !matches(panel, s.labels)) return;
        var tr = newTrace(panel, s.metric, s.labels, chart.count);
        var gap = Math.max(state.resolution === "raw" ? Math.max(3 * (cfg.interval_s || 1), 3) * 1000 : 180000,
                           3 * (history.bucket_s || 0) * 1000);
        // Rollup windows only: there a point stands for minutes and the band is redrawn with
        // each reload; a raw window's buckets are seconds, and a band there would outlive the
        // points the live samples push out of the window.
        var band = state.resolution !== "raw" && s.min && bandTrace(s, gap, tr.line.color);
        if (band) bands.push(band);
        var lastX = null;
        for (var i = 0; i < s.t.length; i++) {
          var x = Math.round(s.t[i] * 1000);      // whole ms, as Plotly keeps a date
          if (lastX !== null && x - lastX < PLOT_STEP_MS && state.resolution === "raw") continue;
          if (lastX !== null && x - lastX > gap) { tr.x.push(lastX + 1); tr.y.push(null); }
          tr.x.push(x); tr.y.push(s.v[i]); lastX = x;
        }
        chart.traces[key] = { index: chart.count, lastX: lastX };
        chart.count++;
        data.push(tr);
        if (s.v.length) setPanelValue(panel, s.metric, s.v[s.v.length - 1]);
      });
      // Bands after the lines: the lines keep their indexes (live samples extend them by index).
      bands.forEach(function (b) { data.push(b); chart.count++; });
      charts[panel.id] = chart;
      if (data.length) {
        chart.initial = data;
        (nearView(div) ? inView : later).push(chart);
      } else {
        div.textContent = fixed ? "no data in this window" : (panel.empty || "no data yet");
      }
    });
    // The first chart in view is drawn now and painted at the end of this task, the other
    // charts in view in the next frame (each costs 40-110 ms of Plotly): the user sees a chart
    // that much sooner. data-charts-drawn: every chart in view drawn.
    var first = inView.shift();
    if (first) {
      plotInitial(first);
      document.body.setAttribute("data-first-chart-drawn", String(Date.now()));
    }
    viewLeft = inView.length;
    later = inView.concat(later);
    if (!viewLeft) document.body.setAttribute("data-charts-drawn", String(Date.now()));
    drawLater(state.generation);
  }

  /* Where a point of the history stands for minutes of samples (the rollup windows: the server
     merges them, issue 15), the bucket's min..max as a shaded band around the mean, so a spike
     shorter than a bucket stays in view. One closed shape per stretch without a gap; none when
     every bucket is one value. */
  function bandTrace(s, gap, color) {
    var x = [], y = [], seg = [], wide = false, lastX = null;
    function close() {
      if (!seg.length) return;
      if (x.length) { x.push(null); y.push(null); }
      for (var i = 0; i < seg.length; i++) { x.push(seg[i][0]); y.push(seg[i][2]); }
      for (var j = seg.length - 1; j >= 0; j--) { x.push(seg[j][0]); y.push(seg[j][1]); }
      seg = [];
    }
    for (var i = 0; i < s.t.length; i++) {
      var t = Math.round(s.t[i] * 1000);
      if (lastX !== null && t - lastX > gap) close();
      seg.push([t, s.min[i], s.max[i]]);
      if (s.min[i] !== s.max[i]) wide = true;
      lastX = t;
    }
    close();
    if (!wide) return null;
    return { x: x, y: y, type: "scatter", mode: "lines", fill: "toself", fillcolor: color,
             opacity: 0.25, line: { width: 0, color: color }, hoverinfo: "skip",
             showlegend: false };
  }

  function nearView(div) {     // at least partly in view now
    var r = div.getBoundingClientRect();
    return r.bottom > 0 && r.top < (window.innerHeight || 0);
  }

  /* A chart's first drawing: its history and whatever traces samples added since. */
  function plotInitial(c) {
    var data = c.initial.concat(c.added);
    c.initial = null;
    c.added = [];
    c.div.textContent = "";
    Plotly.newPlot(c.div, data, layoutFor(c.panel), PLOT_CONFIG);
    c.plotted = true;
    plottedWhole(c);
  }

  function drawLater(gen) {
    requestAnimationFrame(function () {
      if (gen !== state.generation) return;            // a reload replaced these charts
      // The rest of the charts in view in this one frame (one frame after the first chart was
      // painted); then the charts below the fold, one per frame.
      var n = viewLeft > 0 ? viewLeft : 1;
      while (n-- > 0 && later.length) {
        var c = later.shift();
        if (c && c.initial) plotInitial(c);
      }
      if (viewLeft > 0) {
        viewLeft = 0;
        document.body.setAttribute("data-charts-drawn", String(Date.now()));
      }
      if (later.length) drawLater(gen);
      else document.body.setAttribute("data-charts-all-drawn", String(Date.now()));
    });
  }

  /* Which panels are in view. Only they are drawn: a chart moves at most once a second while
     in view (drawFrame), and a panel's value is written while in view; out of view it keeps its
     newest text until the panel comes into view (a changed text restyled, laid out and repainted
     the page around it every second, and at 1080p most panels are below the fold, issue 19).
     No margin: a chart entering the view is brought up to date a frame or two later (the
     observer's callback, then the next animation frame). A 200 px margin kept another row of
     charts below the fold of a 1080p screen moving every second: half as much again. */
  var shown = {};             // panel id -> in view (absent: no IntersectionObserver, always)
  var heldValues = {};        // panel id -> text held while its panel is out of view
  var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      var id = e.target.id.slice("panel-".length);
      shown[id] = e.isIntersecting;
      if (e.isIntersecting && heldValues[id] !== undefined) {
        writeValue(id, heldValues[id]);
        delete heldValues[id];
      }
    });
    wake(0);
  }) : null;
  cfg.panels.forEach(function (p) {
    var fig = document.getElementById("panel-" + p.id);
    if (!fig || !observer) return;
    // Where it is now: the history may be drawn before the observer's first answer.
    var r = fig.getBoundingClientRect();
    shown[p.id] = r.bottom > 0 && r.top < window.innerHeight;
    observer.observe(fig);
  });
  function inView(panel) { return shown[panel.id] !== false; }

  // The pointer over a chart: its moves go through Plotly (hover reads what Plotly computed).
  // Pointer events, not mouse events: a tap hovers too, and Plotly cancels a tap's mouse events.
  var pointerOn = {};         // panel id -> the pointer is over its chart
  cfg.panels.forEach(function (p) {
    var div = document.getElementById("chart-" + p.id);
    if (!div) return;
    div.addEventListener("pointerenter", function () {
      pointerOn[p.id] = true;
      var c = charts[p.id];
      if (c && c.tailed) move(c, null, []);
    });
    div.addEventListener("pointerleave", function () { pointerOn[p.id] = false; });
  });

  function setPanelValue(panel, metric, v) {
    if (panel.metrics[0] !== metric) return;
    var text = formatValue(v, panel.unit);
    if (!inView(panel)) { heldValues[panel.id] = text; return; }
    writeValue(panel.id, text);
  }

  function writeValue(id, text) {
    var el = document.getElementById("value-" + id);
    if (el && el.textContent !== text) el.textContent = text;   // no DOM write, no relayout
  }

  /* Benchmarks (bench/page_endurance.py) set window.dashboardPerf before the page loads: each
     batch taken in is then recorded as a performance measure "dashboard:apply", each frame
     that redraws charts as "dashboard:draw". Otherwise nothing is recorded (a boolean test). */
  var perf = window.dashboardPerf === true && !!(window.performance && performance.measure);

  function applySamples(samples) {
    if (!perf) { applyBatch(samples); return; }
    var t0 = performance.now();
    applyBatch(samples);
    performance.measure("dashboard:apply", { start: t0, detail: samples.length });
  }

  /* Apply samples in sequence order: queue each chart's new points (drawn by drawFrame). */
  function applyBatch(samples) {
    if (!samples.length) return;
    samples.sort(function (a, b) { return a.seq - b.seq; });
    var rollupWindow = state.resolution !== "raw";
    var cap = maxPoints();
    samples.forEach(function (s) {
      if (s.seq <= state.lastSeq) return;
      state.lastSeq = s.seq;
      if (s.ts > state.lastSampleTs) state.lastSampleTs = s.ts;
      var x = Math.round(s.ts * 1000);          // whole ms, as Plotly keeps a date (drawTails)
      Object.keys(s.values).forEach(function (metric) {
        var ps = metricPanels[metric];
        if (!ps || !wanted(metric, s.labels)) return;
        var key = seriesKey(metric, s.labels);
        ps.forEach(function (panel) {
          var chart = charts[panel.id];
          if (!chart || !matches(panel, s.labels)) return;
          var t = chart.traces[key];
          if (!t) {
            t = chart.traces[key] = { index: chart.count++, lastX: null };
            chart.added.push(newTrace(panel, metric, s.labels, t.index));
            queue(chart);
          }
          setPanelValue(panel, metric, s.values[metric]);
          if (t.lastX !== null && x <= t.lastX) return;             // already drawn
          if (rollupWindow && t.lastX !== null && x - t.lastX < 60000) return; // one point a minute
          if (!rollupWindow && t.lastX !== null && x - t.lastX < PLOT_STEP_MS) return;
          var u = chart.pend = chart.pend || { x: [], y: [], idx: [], pos: {} };
          var p = u.pos[t.index];
          if (p === undefined) { p = u.pos[t.index] = u.idx.length; u.idx.push(t.index); u.x.push([]); u.y.push([]); }
          if (t.lastX !== null && x - t.lastX > gapMs(s.source)) { u.x[p].push(t.lastX + 1); u.y[p].push(null); }
          u.x[p].push(x); u.y[p].push(s.values[metric]);
          // A chart off screen (or a hidden tab) keeps no more than the window's points.
          if (u.x[p].length > cap + 100) { u.x[p].splice(0, u.x[p].length - cap); u.y[p].splice(0, u.y[p].length - cap); }
          t.lastX = x;
          queue(chart);
        });
      });
    });
  }

  /* ---- drawing: at most once a second per chart, on screen only, a few ms per frame ---- */
  var dirty = [];             // charts with queued points or traces, oldest first

  function queue(chart) {
    if (chart.queued) return;
    chart.queued = true;
    dirty.push(chart);
    wake(Math.max(0, chart.lastDraw + REDRAW_EVERY_MS - performance.now()));
  }

  var frameAsked = false, timer = null, timerAt = Infinity;
  function wake(delay) {
    if (frameAsked) return;
    if (delay <= 0) {
      if (timer) { clearTimeout(timer); timer = null; timerAt = Infinity; }
      frameAsked = true;
      requestAnimationFrame(drawFrame);
      return;
    }
    var at = performance.now() + delay;
    if (timer && timerAt <= at) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(function () { timer = null; timerAt = Infinity; wake(0); }, delay);
  }

  function flush(c) {
    var fresh = !!c.initial || c.added.length > 0;     // drawn whole in this flush anyway
    if (c.initial) plotInitial(c);
    if (c.added.length) {
      if (c.plotted) {
        Plotly.addTraces(c.div, c.added);
      } else {
        c.div.textContent = "";
        Plotly.newPlot(c.div, c.added, layoutFor(c.panel), PLOT_CONFIG);
        c.plotted = true;
        plottedWhole(c);
      }
      c.added = [];
    }
    if (c.pend) {
      if (fresh || !slide(c)) {
        Plotly.extendTraces(c.div, { x: c.pend.x, y: c.pend.y }, c.pend.idx, maxPoints(c.windowS));
        // The drawing above kept the x range a slide gave: past its end, the next step now.
        var x = c.xr && xStep(c, c.div.data, []);
        if (x) Plotly.relayout(c.div, { "xaxis.range": x });
        drawnByPlotly(c);
      }
      c.pend = null;
    }
    c.lastDraw = performance.now();
  }

  /* The once-a-second move of a chart in a raw window: the new points are appended to the traces'
     arrays in place and drawn through Plotly.animate without a redraw. The axes move only when
     they must: the x axis in steps (xStep), the y axis when a point leaves it (yKept). A second
     without an axis move draws the new points outside Plotly (drawTails). Plotly.extendTraces
     redraws the whole chart (defaults of every attribute, legend, threshold lines, margins): about
     half the main thread an idle page used (issue 19, bench/page_cost.py). Animating the traces
     alone and moving the axes with one relayout drew the lines twice (the transition, then the
     relayout) and cost a third more. Rollup windows (min..max bands) keep extendTraces. */
  var SLIDE = { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: "immediate" };
  function slide(c) {
    var gd = c.div, u = c.pend, data = gd.data;
    if (state.resolution !== "raw" || !data || !gd._fullLayout || typeof Plotly.animate !== "function") return false;
    for (var k = 0; k < u.idx.length; k++) if (!data[u.idx[k]]) return false;
    for (k = 0; k < u.idx.length; k++) {
      var tr = data[u.idx[k]];
      Array.prototype.push.apply(tr.x, u.x[k]);
      Array.prototype.push.apply(tr.y, u.y[k]);
    }
    var layout = {}, moved = false, x = xStep(c, data, u.idx);
    if (x) { layout.xaxis = { range: x }; moved = true; }
    var y = !c.panel.y_max && yKept(gd, yRange(c.panel, data));
    if (y) { layout.yaxis = { range: y }; moved = true; }
    if (!moved && !pointerOn[c.panel.id] && drawTails(c, u.idx)) return true;
    move(c, moved ? layout : null, u.idx);
    return true;
  }

  /* A move through Plotly: with a layout, every trace is handed over (each is drawn again on the
     new axes); else those with new points, and every trace when some line has a tail (Plotly's
     line takes the tail's points, and the tails go). */
  function move(c, layout, idx) {
    var gd = c.div, data = gd.data;
    if (layout || c.tailed) idx = data.map(function (_, i) { return i; });
    var upd = idx.map(function (i) { return { x: data[i].x, y: data[i].y }; });
    var frame = { data: upd, traces: idx };
    if (layout) frame.layout = layout;
    c.moving++;                                            // until it ends (movesSettled)
    Plotly.animate(gd, frame, SLIDE).then(function () { c.moving--; }, function () {
      c.moving--;
      if (charts[c.panel.id] !== c) return;
      c.xr = null;                                         // the next move gives the axes again
      Plotly.redraw(gd);                                   // an interrupted move: draw it whole
    });
    // Plotly computes and draws the traces in this task's microtasks, before the next paint
    // (the axes of a move follow in the next frame).
    drawnByPlotly(c);
  }

  /* A second without an axis move is drawn outside Plotly: a chart's axes stay put for 22-45 s
     of a 15-minute window (xStep, yKept), and in those seconds Plotly's line, as it last drew it,
     is still right where it is; only the points after its end are missing. They are drawn as a
     "tail": one SVG path per trace in the plot area, from the last point Plotly drew, placed by
     the axes' own scale (c2p, which rounds to 0.01 px) in the trace's colour and width.
     A move through Plotly paid the defaults of the whole figure and redrew each line whole
     (~3 ms a chart, about two fifths of the wall screen's main thread, issue 19).
     The next move through Plotly (an axis move, a new trace) takes the tails' points into its
     line and the tails are emptied; a redraw Plotly makes itself keeps its line (see
     plottedWhole). Plotly's hover reads what it last computed, so while the
     pointer is over a chart its moves go through Plotly, and entering it brings Plotly up to date
     first. Where Plotly's plot area or axes are not found, the move goes through Plotly. */
  var SVG_NS = "http://www.w3.org/2000/svg";
  function drawTails(c, idx) {
    var gd = c.div, fl = gd._fullLayout, fd = gd._fullData, data = gd.data;
    var xy = fl && fl._plots && fl._plots.xy, xa = fl && fl.xaxis, ya = fl && fl.yaxis;
    if (!c.plotX || !xy || !xy.plot || !fd || !xa || !ya ||
        typeof xa.c2p !== "function" || typeof ya.c2p !== "function") return false;
    for (var k = 0; k < idx.length; k++) {
      var i = idx[k], f = fd[i];
      if (c.plotX[i] === undefined || !f || !f.line || f.index !== i) return false;
    }
    // The plot area and axes the tails are drawn on: Plotly's line was drawn on them (a redraw
    // Plotly makes itself draws the tails again, plottedWhole).
    var geo = geometry(gd, xa, ya);
    if (c.geo === undefined) c.geo = geo;
    else if (geo !== c.geo) return false;
    var host = xy.plot.node();
    if (!c.tailG || c.tailG.parentNode !== host) {
      c.tailG = document.createElementNS(SVG_NS, "g");
      c.tailG.setAttribute("class", "live-tails");
      host.appendChild(c.tailG);
      c.tails = {};
    }
    for (k = 0; k < idx.length; k++) {
      i = idx[k]; f = fd[i];
      var tr = data[i], from = c.plotX[i], x = tr.x, y = tr.y, j = x.length - 1;
      while (j > 0 && x[j] > from) j--;                   // the last point Plotly drew
      var d = "", pen = false;
      for (; f.visible === true && j < x.length; j++) {
        var v = y[j];
        if (v === null || v === undefined) { pen = false; continue; }   // a gap stays a gap
        d += (pen ? "L" : "M") + xa.c2p(x[j]) + "," + ya.c2p(v);
        pen = true;
      }
      var p = c.tails[i];
      if (!p) {
        p = c.tails[i] = document.createElementNS(SVG_NS, "path");
        p.setAttribute("style", "fill:none;stroke-miterlimit:2;stroke:" + f.line.color +
                       ";stroke-width:" + f.line.width + "px;opacity:" + f.opacity);
        c.tailG.appendChild(p);
      }
      if (d) { p.setAttribute("d", d); c.tailed = true; } else p.removeAttribute("d");
    }
    return true;
  }

  /* Where Plotly draws: the plot area, the axes' ranges, which traces are shown (a click on a
     legend entry hides one). */
  function geometry(gd, xa, ya) {
    return [xa._offset, xa._length, ya._offset, ya._length].concat(xa.range, ya.range,
      gd._fullData.map(function (f) { return f.visible; })).join();
  }

  /* Plotly has drawn every point its traces hold now: where each line ends, and no tails. */
  function drawnByPlotly(c) {
    var data = c.div.data || [];
    c.plotX = data.map(function (tr) { return tr.x.length ? tr.x[tr.x.length - 1] : -Infinity; });
    c.geo = undefined;          // read at the first tail, once Plotly has drawn
    if (!c.tailed) return;
    Object.keys(c.tails).forEach(function (i) { c.tails[i].removeAttribute("d"); });
    c.tailed = false;
  }

  /* After Plotly.newPlot (which drops a chart's listeners): every point is in Plotly's line.
     Plotly also redraws a chart itself: a resize redraws its line from the points it last
     computed (not the tails'), a legend click shows or hides a trace. Where the plot area, the
     axes or the traces shown changed, the tails are drawn again on them, from where Plotly's
     line ends (or, where that cannot be done, handed to Plotly). */
  function plottedWhole(c) {
    drawnByPlotly(c);
    if (!c.div.on) return;
    c.div.on("plotly_afterplot", function () {
      var gd = c.div, fl = gd._fullLayout;
      if (charts[c.panel.id] !== c || !c.tailed || geometry(gd, fl.xaxis, fl.yaxis) === c.geo) return;
      c.geo = undefined;
      if (!drawTails(c, gd.data.map(function (_, i) { return i; }))) move(c, null, []);
    });
  }

  /* The x axis moves in steps: it ends a lead past the newest point and stays put while new points
     fill that room, then moves on by the lead at once. Moving an axis (ticks, labels, grid, every
     trace again) was about 45 % of a chart's move; at every second it cost the wall screen more
     than the lines did (issue 19). The lead is 2.5-5 % of the window (22-45 s of 15 minutes; of
     the span drawn while a chart fills, at least 5 s), spread over the charts so that they do not
     all move their axes in the same second. At a move the axis starts X_SPAN windows before the
     newest point (or at the oldest point, while the chart fills) and the traces are cut there, by
     time, whatever their sampling interval (a 30 s probe's 1,000 points would be 8 hours), and to
     maxPoints as a bound. While the axis stays, the points that fall off its start are dropped; a
     point at or before the start stays, so the line reaches the axis' edge. */
  var X_LEAD = 0.05, X_SPAN = 1.1;   // X_SPAN: what 1 s charts showed before (maxPoints' slack)
  var X_LEAD_MIN_MS = 5000;           // a few points between steps, even in a chart's first minute
  function xStep(c, data, idx) {
    var hi = -Infinity, k, tr;
    for (k = 0; k < data.length; k++) {
      tr = data[k];
      if (tr.x.length && tr.x[tr.x.length - 1] > hi) hi = tr.x[tr.x.length - 1];
    }
    var xr = c.xr;
    if (xr && hi <= xr[1]) {
      for (k = 0; k < idx.length; k++) cutBefore(data[idx[k]], xr[0]);
      return null;
    }
    var win = c.windowS * 1000, x0 = hi - win * X_SPAN;
    var cap = maxPoints(c.windowS), lo = Infinity;
    for (k = 0; k < data.length; k++) {
      tr = data[k];
      cutBefore(tr, x0);
      if (tr.x.length > cap) { tr.x.splice(0, tr.x.length - cap); tr.y.splice(0, tr.y.length - cap); }
      if (tr.x.length && tr.x[0] < lo) lo = tr.x[0];
    }
    lo = Math.max(lo, x0);
    if (c.stagger === undefined) c.stagger = staggerOf(c.panel.id);
    // Of the span drawn, up to the window: while a chart fills (the first minutes after a start)
    // a lead of the whole window's share was up to 45 s of empty axis beside a minute of line.
    var drawn = Math.min(win, Math.max(hi - lo, 0));
    var lead = Math.max(X_LEAD_MIN_MS, drawn * X_LEAD * (0.5 + 0.5 * c.stagger));
    c.xr = [lo < hi ? lo : hi - 1000, hi + lead];
    return c.xr.slice();
  }

  function cutBefore(tr, x0) {
    var n = 0;
    while (n < tr.x.length - 1 && tr.x[n + 1] <= x0) n++;   // the point at or before the start stays
    if (n) { tr.x.splice(0, n); tr.y.splice(0, n); }
  }

  /* A fraction in [0, 1) fixed per panel: the charts' x axes move at different seconds. */
  function staggerOf(id) {
    var h = 0;
    for (var i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) % 1000003;
    return (h * 0.6180339887) % 1;
  }

  /* The y axis is not moved while every point stays within it: a new y range only when a point
     leaves the axis (or the axis reaches more than Y_SLACK - 1 of the points' span beyond them,
     e.g. a spike left the window), and then with Y_HEADROOM of that span beyond what the points
     need, so the next few rises fit. fit: what autorange would give (yRange). */
  var Y_HEADROOM = 0.1, Y_SLACK = 1.35;
  function yKept(gd, fit) {
    // Until a range is given, Plotly autoranges the y axis at every move (the first drawing's).
    var ya = gd.layout.yaxis || {}, cur = ya.autorange === false ? ya.range : null;
    var span = fit[1] - fit[0];
    if (cur && cur[0] <= fit[0] && cur[1] >= fit[1] && cur[0] >= fit[0] - span * (Y_SLACK - 1) &&
        cur[1] <= fit[1] + span * (Y_SLACK - 1)) return null;
    return [fit[0] < 0 ? fit[0] - span * Y_HEADROOM : fit[0], fit[1] > 0 ? fit[1] + span * Y_HEADROOM : fit[1]];
  }

  /* What autorange with rangemode "tozero" gives lines (the panel's threshold lines included, as
     their shapes and labels count there): zero to the extreme, 5 % of the axis as padding on the
     side away from zero. */
  function yRange(panel, data) {
    var lo = 0, hi = 0;
    (panel.lines || []).forEach(function (l) { if (l.value < lo) lo = l.value; if (l.value > hi) hi = l.value; });
    data.forEach(function (tr) {
      var y = tr.y;
      for (var i = 0; i < y.length; i++) {
        var v = y[i];
        if (v === null || v === undefined) continue;
        if (v > hi) hi = v; else if (v < lo) lo = v;
      }
    });
    if (hi === lo) return [0, 1];
    var pads = (lo < 0 ? 1 : 0) + (hi > 0 ? 1 : 0), pad = (hi - lo) * 0.05 / (1 - 0.05 * pads);
    return [lo < 0 ? lo - pad : lo, hi > 0 ? hi + pad : hi];
  }

  function drawFrame() {
    frameAsked = false;
    var t0 = performance.now(), drawn = 0, next = Infinity;
    for (var i = 0; i < dirty.length;) {
      var c = dirty[i];
      if (charts[c.panel.id] !== c) { dirty.splice(i, 1); continue; }   // replaced by a reload
      var due = c.lastDraw + REDRAW_EVERY_MS;
      var whole = !!c.initial || c.added.length > 0;
      if (!inView(c.panel) || due > t0 ||
          (drawn && (whole || drawn >= MOVES_PER_FRAME || performance.now() - t0 > MOVE_BUDGET_MS))) {
        if (inView(c.panel)) next = Math.min(next, due);
        i++;
        continue;
      }
      dirty.splice(i, 1);
      c.queued = false;
      flush(c);
      drawn++;
    }
    if (perf && drawn) performance.measure("dashboard:draw", { start: t0, detail: drawn });
    if (next < Infinity) wake(Math.max(1, next - performance.now()));
  }

  function onSamples(batch) {
    if (fixed) return;                 // a fixed window never moves
    if (!state.ready) { Array.prototype.push.apply(state.pending, batch); return; }
    if (document.hidden) {
      if (state.hiddenOverflow) return;
      Array.prototype.push.apply(state.hidden, batch);
      if (state.hidden.length > 20000) { state.hidden = []; state.hiddenOverflow = true; }
      if (batch.length) state.lastSampleTs = Math.max(state.lastSampleTs, batch[batch.length - 1].ts);
      return;
    }
    applySamples(batch);
  }

  function flushPending() {
    var p = state.pending; state.pending = [];
    applySamples(p);
  }

  /* After history or a reconnect: ask for everything after lastSeq, then go live. */
  function resume() {
    if (!state.connected || fixed) return;
    var gen = state.generation;
    state.ready = false;
    socket.emit("resume", { after_seq: state.lastSeq }, function (resp) {
      if (gen !== state.generation) return;
      // Asked too soon (e.g. a window switch right after the first resume): ask again shortly.
      // Reloading the whole history instead would purge and redraw every chart.
      if (resp && resp.retry_after_s) {
        setTimeout(function () { if (gen === state.generation) resume(); }, resp.retry_after_s * 1000 + 50);
        return;
      }
      if (!resp || resp.error || resp.truncated) { loadHistory(); return; }
      applySamples(resp.samples);
      state.ready = true;
      flushPending();
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401 || r.redirected) { window.location.reload(); throw new Error("login"); }
      if (!r.ok) throw new Error(url.split("?")[0] + ": HTTP " + r.status);
      return r.json();
    });
  }

  /* The alerts whose span meets the fixed window, from the breach's start to its resolution
     (or the window's end while it still fires). */
  function loadShades() {
    return getJSON("/api/alerts/window?from=" + fixed.from + "&to=" + fixed.to).then(function (a) {
      shades = a.alerts.map(function (e) {
        return { id: e.id, panel: e.panel, severity: e.peak_severity || e.severity, title: e.title,
                 x0: Math.max(e.started_at, fixed.from) * 1000,
                 x1: Math.min(e.resolved_at || fixed.to, fixed.to) * 1000 };
      });
      // In a storm the answer holds the newest alerts only: say so rather than shade silently less.
      var cut = document.getElementById("fixed-window-truncated");
      if (cut) cut.hidden = !a.truncated;
      document.body.setAttribute("data-alerts-shaded", String(shades.length));
    });
  }

  /* A series of /api/history on a grid (rollup windows, issue 15: a day of one-minute points
     carries no time per point): point i < v.length - t.length is at t0 + i * dt (null: a bucket
     without values, left out here), the others at t[i - grid]; min and max are left out where
     every bucket equals its mean. Made explicit here, so the drawing reads t, v, min, max. */
  function expandSeries(s) {
    if (s.t0 === undefined || s.t0 === null) return;
    var grid = s.v.length - s.t.length, t = [], v = [];
    var lo = s.min ? [] : null, hi = s.max ? [] : null;
    for (var i = 0; i < s.v.length; i++) {
      if (s.v[i] === null) continue;
      t.push(i < grid ? s.t0 + i * s.dt : s.t[i - grid]);
      v.push(s.v[i]);
      if (lo) { lo.push(s.min[i]); hi.push(s.max[i]); }
    }
    s.t = t; s.v = v;
    if (lo) { s.min = lo; s.max = hi; }
  }

  function loadHistory() {
    var gen = ++state.generation;
    state.ready = false;
    // view=live: only what this page draws (its panels' metrics, one host's host metrics);
    // the same URL as the preload link in live.html, so the first answer is the preloaded one.
    var url = "/api/history?window_s=" + state.windowS + "&view=live" +
      (fixed ? "&until=" + fixed.to : "") +
      (hostFilter ? "&host=" + encodeURIComponent(hostFilter) : "") +
      pinnedQueues.map(function (q) { return "&queue=" + encodeURIComponent(q); }).join("");
    return Promise.all([getJSON(url), fixed ? loadShades() : null])
      .then(function (answers) {
        return movesSettled().then(function () { return answers; });
      })
      .then(function (answers) {
        var h = answers[0];
        if (gen !== state.generation) return;
        state.resolution = h.resolution;
        state.lastSeq = h.last_seq;
        queueView = null;
        if (h.queues) {
          queueView = { shown: h.queues.shown, drawn: Object.create(null), count: h.queues.shown.length,
                        total: h.queues.total, limit: h.queues.limit, pinned: h.queues.pinned };
          h.queues.shown.forEach(function (q) { queueView.drawn[q] = true; });
        }
        Object.keys(h.series).forEach(function (k) {
          expandSeries(h.series[k]);
          var t = h.series[k].t;
          if (t.length && t[t.length - 1] > state.lastSampleTs) state.lastSampleTs = t[t.length - 1];
        });
        drawHistory(h);
        document.dispatchEvent(new CustomEvent("dashboard:history"));
        state.pending = state.pending.filter(function (s) { return s.seq > state.lastSeq; });
        if (state.connected) resume();
      })
      .catch(function (e) {
        if (gen !== state.generation) return;
        console.error(e);
        setTimeout(function () { if (gen === state.generation) loadHistory(); }, 2000);
      });
  }

  /* ---- status chip: live / reconnecting / stale ---- */
  var chip = document.getElementById("status-chip");
  function updateChip() {
    var age = state.lastSampleTs ? Date.now() / 1000 - state.lastSampleTs : null;
    var text, cls;
    if (fixed) {
      text = "fixed window"; cls = "chip-fixed";
    } else if (!state.connected) {
      text = state.everConnected ? "reconnecting…" : "connecting…"; cls = "chip-reconnecting";
    } else if (age === null || age > 3 * Math.max(cfg.interval_s || 1, 1) + 1) {
      text = age === null ? "waiting for samples" : "stale · last sample " + Math.round(age) + " s ago";
      cls = "chip-stale";
    } else {
      text = "live"; cls = "chip-live";
    }
    if (!fixed && state.connected && !state.ready && state.everConnected) { text = "catching up…"; }
    if (chip.textContent !== text) chip.textContent = text;
    chip.className = "chip " + cls;
    chip.setAttribute("data-state", cls.replace("chip-", ""));
  }
  setInterval(updateChip, 1000);

  /* ---- window selector ---- */
  Array.prototype.forEach.call(document.querySelectorAll(".windows button"), function (b) {
    b.addEventListener("click", function () {
      Array.prototype.forEach.call(document.querySelectorAll(".windows button"), function (o) {
        o.classList.toggle("active", o === b); o.setAttribute("aria-pressed", String(o === b));
      });
      state.windowS = parseInt(b.getAttribute("data-window"), 10);
      loadHistory();
    });
  });

  /* ---- hidden tabs ---- */
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    if (state.hiddenOverflow) { state.hiddenOverflow = false; state.hidden = []; loadHistory(); return; }
    var h = state.hidden; state.hidden = [];
    if (state.ready) applySamples(h); else Array.prototype.push.apply(state.pending, h);
  });

  /* ---- the socket ---- */
  var socket = io("/live", { transports: ["websocket", "polling"], reconnectionDelayMax: 5000,
                             withCredentials: true });
  socket.on("connect", function () {
    state.connected = true; state.everConnected = true;
    document.body.setAttribute("data-transport", socket.io.engine.transport.name);
    if (state.generation > 0 && state.lastSeq >= 0 && charts && Object.keys(charts).length) resume();
    updateChip();
  });
  socket.on("disconnect", function () { state.connected = false; state.ready = false; updateChip(); });
  socket.on("connect_error", function (err) {
    state.connected = false; updateChip();
    // The server refused us (session expired or logged out elsewhere): reloading shows the login.
    if (err && err.message === "login required") window.location.reload();
  });
  socket.on("samples", onSamples);
  window.dashboardLive = { state: state, charts: function () { return charts; }, socket: socket,
                           maxPoints: maxPoints, reload: loadHistory,
                           queues: function () { return queueView; }, fixed: fixed,
                           shades: function () { return shades; } };
  Array.prototype.forEach.call(document.querySelectorAll("time[data-epoch]"), function (t) {
    var d = new Date(parseInt(t.getAttribute("data-epoch"), 10) * 1000);
    t.setAttribute("datetime", d.toISOString());
    t.textContent = d.toLocaleString();
  });

  loadHistory();
})();
