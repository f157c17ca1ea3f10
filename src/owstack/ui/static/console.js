/* owstack console: draws each page's charts from the tables under them (uPlot), and runs the opt-in
   auto-refresh (htmx). No inline script anywhere: everything the page needs is in its HTML. */
(function () {
  "use strict";
  var plots = [];

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function compact(v) {
    var a = Math.abs(v);
    var units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (a >= units[i][0]) return (v / units[i][0]).toPrecision(3).replace(/\.?0+$/, "") + units[i][1];
    }
    return a >= 1 || a === 0 ? String(Math.round(v * 100) / 100) : v.toPrecision(2);
  }

  function format(unit) {
    if (unit === "usd") {
      return function (v) {
        if (v == null) return "-";
        var a = Math.abs(v);
        var s = a >= 1000 ? compact(a) : a.toFixed(a >= 1 || a === 0 ? 2 : 4);
        return (v < 0 ? "-$" : "$") + s;
      };
    }
    if (unit === "s") {
      return function (v) { return v == null ? "-" : (v < 1 ? (v * 1000).toPrecision(3) + " ms" : v.toFixed(2) + " s"); };
    }
    return function (v) { return v == null ? "-" : compact(v); };
  }

  function readTable(figure) {
    var heads = figure.querySelectorAll("thead th");
    var labels = [], units = [];
    for (var i = 1; i < heads.length; i++) {
      labels.push(heads[i].textContent.trim());
      units.push(heads[i].getAttribute("data-unit") || "n");
    }
    var xs = [], columns = labels.map(function () { return []; });
    figure.querySelectorAll("tbody tr").forEach(function (row) {
      xs.push(Number(row.querySelector("th").getAttribute("data-x")));
      row.querySelectorAll("td").forEach(function (cell, j) {
        var v = cell.getAttribute("data-v");
        columns[j].push(v === "" || v === "None" ? null : Number(v));
      });
    });
    return { xs: xs, columns: columns, labels: labels, units: units };
  }

  function draw(figure) {
    var data = readTable(figure);
    var box = figure.querySelector(".plot");
    if (!data.xs.length || !box || typeof uPlot === "undefined") return;
    box.textContent = "";
    var palette = [cssVar("--c1"), cssVar("--c2"), cssVar("--c3"), cssVar("--c4")];
    var fmt = format(data.units[0]);
    var axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid"), width: 1 }, ticks: { stroke: cssVar("--grid"), width: 1 } };
    var options = {
      width: Math.max(box.clientWidth, 280),
      height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { size: 84, values: function (u, vals) { return vals.map(fmt); } })],
      series: [{}].concat(data.labels.map(function (label, i) {
        return { label: label, stroke: palette[i % palette.length], width: 2, points: { show: data.xs.length < 60 },
                 value: function (u, v) { return fmt(v); } };
      })),
      legend: { live: true }
    };
    var plot = new uPlot(options, [data.xs].concat(data.columns), box);
    plots.push({ plot: plot, box: box });
    figure.classList.add("drawn");
    var details = figure.querySelector("details.data");
    if (details) details.open = false;
  }

  function drawAll(root) {
    plots = plots.filter(function (p) { return document.body.contains(p.box); });
    root.querySelectorAll("figure.chart").forEach(draw);
  }

  function redraw() {
    plots.forEach(function (p) { p.plot.destroy(); });
    plots = [];
    drawAll(document);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      plots.forEach(function (p) { p.plot.setSize({ width: Math.max(p.box.clientWidth, 280), height: 240 }); });
    }, 150);
  });

  var refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    var main = document.getElementById("main");
    var seconds = main && Number(main.getAttribute("data-refresh-s"));
    if (!seconds || typeof htmx === "undefined") return;
    refreshTimer = setTimeout(function () {
      if (document.visibilityState !== "visible") { scheduleRefresh(); return; }
      htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#main", swap: "innerHTML" });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    drawAll(document);
    scheduleRefresh();
    document.body.addEventListener("htmx:afterSwap", function (event) {
      drawAll(event.detail.target || document);
      scheduleRefresh();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") scheduleRefresh();
    });
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
    }
  });
})();
