// PMCT dashboard behaviour (loaded from this origin only; the CSP allows no inline script).
"use strict";
(function () {
  function fmt(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d" + String(Math.floor((s % 86400) / 3600)).padStart(2, "0") + "h";
  }

  // Countdowns: each [data-countdown] holds seconds left when rendered; count down locally.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.dataset.t0 === undefined) el.dataset.t0 = String(Date.now());
      var left = Number(el.dataset.countdown) - (Date.now() - Number(el.dataset.t0)) / 1000;
      el.textContent = left <= 0 ? "now" : fmt(left);
    });
  }

  function bindControls(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    var range = root.querySelector("#copy_percentage");
    var out = root.querySelector("#pct-out");
    if (range && out) {
      range.addEventListener("input", function () { out.textContent = range.value; });
    }
  }

  var PALETTE = ["#2f5bea", "#0a7a3d", "#b54708", "#b42318", "#7a5af8", "#0e9384", "#c11574", "#344054"];

  function money(u, vals) { return vals.map(function (v) { return v == null ? "" : "$" + v.toFixed(2); }); }

  function drawCharts() {
    var dataEl = document.getElementById("perf-data");
    if (!dataEl || typeof uPlot === "undefined") return;
    var data = JSON.parse(dataEl.textContent);
    var cum = document.getElementById("chart-cumulative");
    var daily = document.getElementById("chart-daily");
    if (cum && data.cumulative[0].length) {
      var stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
      var series = [{}].concat(data.traders.map(function (t, i) {
        return { label: t.slice(0, 6) + "…" + t.slice(-4), stroke: PALETTE[i % PALETTE.length], width: 2,
                 spanGaps: true, paths: stepped };
      }));
      new uPlot({ width: cum.clientWidth || 600, height: 260, series: series,
                  axes: [{}, { values: money, size: 70 }], scales: { x: { time: true } } },
                data.cumulative, cum);
      cum.dataset.drawn = "true";
    }
    if (daily && data.daily[0].length) {
      var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
      var days = data.daily[0];
      var day = 86400;
      new uPlot({ width: daily.clientWidth || 600, height: 260,
                  series: [{}, { label: "P&L", stroke: "#2f5bea", fill: "rgba(47,91,234,0.35)", paths: bars, points: { show: false } }],
                  axes: [{}, { values: money, size: 70 }],
                  scales: { x: { time: true, range: [days[0] - day, days[days.length - 1] + day] },
                            y: { range: function (u, lo, hi) { return [Math.min(lo, 0) * 1.1 - 0.01, Math.max(hi, 0) * 1.1 + 0.01]; } } } },
                data.daily, daily);
      daily.dataset.drawn = "true";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindControls(document);
    drawCharts();
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();
