/* The /alerts page: acknowledge and silence forms (JSON API, CSRF header), reload on changes.
 * The tables are rendered by the server (escaped by Jinja); this file only sends forms and
 * reloads when an `alert` event arrives, unless the user is typing in a form. */
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var errorBox = document.getElementById("form-error");

  function showError(text) {
    if (!errorBox) { window.alert(text); return; }
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function send(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  function parseLabels(text) {
    var out = {};
    (text || "").split(",").forEach(function (pair) {
      pair = pair.trim();
      if (!pair) return;
      var i = pair.indexOf("=");
      if (i < 1) throw new Error("labels: write name=value, separated by commas");
      out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
    });
    return out;
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.ack-form"), function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = { comment: form.elements.comment.value };
      var d = form.elements.duration_s.value;
      if (d) body.duration_s = parseFloat(d);
      send("POST", "/api/alerts/" + encodeURIComponent(form.getAttribute("data-alert")) + "/ack", body)
        .then(function () { window.location.reload(); })
        .catch(function (e) { showError(e.message); });
    });
  });

  var silenceForm = document.getElementById("silence-form");
  if (silenceForm) {
    silenceForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body;
      try {
        body = { rule: silenceForm.elements.rule.value || null,
                 labels: parseLabels(silenceForm.elements.labels.value),
                 duration_s: parseFloat(silenceForm.elements.duration_s.value),
                 reason: silenceForm.elements.reason.value };
      } catch (e) { showError(e.message); return; }
      send("POST", "/api/silences", body)
        .then(function () { window.location.reload(); })
        .catch(function (e) { showError(e.message); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.end-silence"), function (b) {
    b.addEventListener("click", function () {
      send("DELETE", "/api/silences/" + encodeURIComponent(b.getAttribute("data-silence")))
        .then(function () { window.location.reload(); })
        .catch(function (e) { showError(e.message); });
    });
  });

  /* The backtest form: one rule, proposed settings, replayed over the stored history
   * (GET /api/alerts/backtest). Every text is set with textContent: labels come from monitored
   * systems. */
  var btForm = document.getElementById("backtest-form");
  var btResult = document.getElementById("backtest-result");
  var btRulesEl = document.getElementById("backtest-rules");
  if (btForm && btRulesEl) {
    var btRules = JSON.parse(btRulesEl.textContent || "{}");
    var btFields = ["warning", "critical", "clear", "for_s", "keep_firing_for_s"];
    var btError = document.getElementById("backtest-error");
    var sinceText = { "1d": "the last day", "7d": "the last 7 days", "30d": "the last 30 days" };

    var fillRule = function () {
      var r = btRules[btForm.elements.rule.value] || {};
      btFields.forEach(function (f) {
        var v = r[f];
        btForm.elements[f].value = (v === null || v === undefined) ? "" : String(v);
      });
    };
    btForm.elements.rule.addEventListener("change", fillRule);
    fillRule();

    var duration = function (s) {
      s = Math.round(s);
      if (s < 60) return s + " s";
      if (s < 3600) return Math.floor(s / 60) + " min";
      var h = Math.floor(s / 3600);
      return h < 48 ? h + " h " + Math.floor((s % 3600) / 60) + " min" : Math.floor(h / 24) + " d " + (h % 24) + " h";
    };
    var cell = function (tr, text) {
      var td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    };

    btForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = new URLSearchParams();
      q.set("rule", btForm.elements.rule.value);
      q.set("since", btForm.elements.since.value);
      btFields.forEach(function (f) {
        var v = btForm.elements[f].value.trim();
        if (v !== "") q.set(f, v);
      });
      btError.hidden = true;
      var button = btForm.querySelector("button");
      button.disabled = true;
      send("GET", "/api/alerts/backtest?" + q.toString())
        .then(function (doc) {
          var pages = 0, flaps = 0;
          doc.rules.forEach(function (r) { pages += r.fired; flaps += r.flaps; });
          document.getElementById("backtest-summary").textContent =
            "These settings over " + (sinceText[btForm.elements.since.value] || btForm.elements.since.value) + ": " +
            pages + (pages === 1 ? " page" : " pages") + ", " + flaps + " of them flaps" +
            " (shorter than 5 min). Resolution: " + doc.resolution + ".";
          var body = document.getElementById("backtest-rows");
          body.textContent = "";
          doc.rules.forEach(function (r) {
            var tr = document.createElement("tr");
            var labels = Object.keys(r.labels).sort().map(function (k) { return k + "=" + r.labels[k]; }).join(", ");
            cell(tr, labels || "–");
            cell(tr, String(r.fired));
            cell(tr, String(r.resolved));
            cell(tr, String(r.escalated));
            cell(tr, String(r.flaps));
            cell(tr, duration(r.firing_s));
            body.appendChild(tr);
          });
          btResult.hidden = false;
        })
        .catch(function (e) {
          btError.textContent = e.message;
          btError.hidden = false;
        })
        .then(function () { button.disabled = false; });
    });
  }

  /* Live updates: reload on alert changes, but never under someone's typing. */
  if (window.io) {
    var socket = io("/live", { transports: ["websocket", "polling"], withCredentials: true });
    var timer = null;
    socket.on("alert", function () {
      if (timer) return;
      timer = setTimeout(function reloadWhenIdle() {
        var a = document.activeElement;
        /* ...nor while a backtest's result is on screen (its reader would lose it). */
        if ((a && (a.tagName === "INPUT" || a.tagName === "SELECT")) || (btResult && !btResult.hidden)) { timer = setTimeout(reloadWhenIdle, 5000); return; }
        window.location.reload();
      }, 500);
    });
  }
})();
