/* Refreshes the fleet table every 2 s. Host names come from the monitored fleet: textContent only. */
(function () {
  "use strict";
  var body = document.querySelector("#fleet tbody");
  function pct(v) { return v === null ? "–" : v.toFixed(1) + " %"; }
  function cell(text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
  function render(hosts) {
    var rows = hosts.map(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-host", r.host);
      var a = document.createElement("a");
      a.textContent = r.host;
      a.href = r.agent ? "/?host=" + encodeURIComponent(r.host) : "/";
      var name = document.createElement("td"); name.appendChild(a); tr.appendChild(name);
      var st = document.createElement("td"), chip = document.createElement("span");
      chip.className = "chip " + (r.up === false ? "chip-stale" : "chip-live");
      chip.textContent = r.up === false ? "down" : "up";
      st.appendChild(chip); tr.appendChild(st);
      tr.appendChild(cell(pct(r.cpu), "num"));
      tr.appendChild(cell(pct(r.mem), "num"));
      tr.appendChild(cell(r.load === null ? "–" : r.load.toFixed(2), "num"));
      tr.appendChild(cell(pct(r.disk), "num"));
      tr.appendChild(cell(r.age_s === null ? "–" : Math.round(r.age_s) + " s ago", "num"));
      return tr;
    });
    body.replaceChildren.apply(body, rows);
  }
  function poll() {
    fetch("/api/fleet", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) { render(d.hosts); })
      .catch(function () { /* keep the last table; try again */ });
  }
  setInterval(poll, 2000);
})();
