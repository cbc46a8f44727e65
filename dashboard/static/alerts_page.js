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

  /* Live updates: reload on alert changes, but never under someone's typing. */
  if (window.io) {
    var socket = io("/live", { transports: ["websocket", "polling"], withCredentials: true });
    var timer = null;
    socket.on("alert", function () {
      if (timer) return;
      timer = setTimeout(function reloadWhenIdle() {
        var a = document.activeElement;
        if (a && (a.tagName === "INPUT" || a.tagName === "SELECT")) { timer = setTimeout(reloadWhenIdle, 5000); return; }
        window.location.reload();
      }, 500);
    });
  }
})();
