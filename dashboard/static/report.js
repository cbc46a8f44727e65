/* Daily summary page: draw the server-built plotly figures.
   Each figure is JSON in <script type="application/json" class="figure" data-chart="ID">
   (the CSP forbids inline script); plotly.js comes from /vendor/plotly-basic.min.js. */
(function () {
  "use strict";

  var blocks = Array.prototype.slice.call(
    document.querySelectorAll('script[type="application/json"].figure'));
  var config = {displayModeBar: false, responsive: true};

  function draw(block) {
    var el = document.getElementById(block.getAttribute("data-chart"));
    if (!el) { return Promise.resolve(); }
    var fig = JSON.parse(block.textContent);
    return Plotly.newPlot(el, fig.data, fig.layout, config);
  }

  Promise.all(blocks.map(draw)).then(function () {
    // e2e tests and the print view wait for this
    document.body.setAttribute("data-charts-drawn", String(blocks.length));
  }, function (err) {
    document.body.setAttribute("data-charts-error", String(err));
  });

  // Printed pages are narrower than the screen: redraw at the page's width, then back.
  function resizeAll() {
    blocks.forEach(function (block) {
      var el = document.getElementById(block.getAttribute("data-chart"));
      if (el && el.data) { Plotly.Plots.resize(el); }
    });
  }
  window.addEventListener("beforeprint", resizeAll);
  window.addEventListener("afterprint", resizeAll);
})();
