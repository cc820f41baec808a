// Charts of the patient's measurements over time (uPlot, served from /static/vendor/), one per
// measurement and unit, with the alert thresholds of the patient's pathways as dashed lines,
// each named in the legend and on the line. Readings that are abnormal for the patient get a
// red ring, and "⚠" with words in the tooltip. Dates and numbers are written in the page's
// language (Intl, <html lang>); the words come from the page (#chart-texts). The tables
// next to the charts carry the same values and flags for screen readers and keyboard users.
//
// The measurements section is refreshed in place by the live updates (the patient page swaps
// it with the rest): the charts are drawn again from the new data, the old ones destroyed.
(function () {
  "use strict";
  if (typeof uPlot === "undefined") return;
  var drawnFrom = null;  // the #chart-data element the current charts were drawn from
  var drawn = [];  // their uPlot instances
  var words = {};
  var lang = document.documentElement.lang || undefined;
  // English pages write dates day first on a 24-hour clock, as the server does
  // (config/formats/en): the care teams are French, 08/12 is 8 December.
  if (lang === "en") lang = "en-GB";
  var DAY = 86400;
  var dayFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short" });
  var hourFormat = new Intl.DateTimeFormat(lang, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"
  });
  var fullFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  var numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  var LINE_COLOURS = ["#8a1c1c", "#9a4a00", "#5b2a86", "#00606b"];
  var READING = "#153e75";
  var ABNORMAL = "#c62828";

  function withUnit(value, chart) {
    return numberFormat.format(value) + (chart.unit_label ? " " + chart.unit_label : "");
  }

  // The alert lines, dashed across the whole plot (also when there is one reading), each with
  // its level written at its left end, above it, away from the latest readings; the legend
  // names them in full.
  function drawLines(chart) {
    return function (u) {
      var ctx = u.ctx;
      var ratio = window.devicePixelRatio || 1;
      var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
      ctx.save();
      ctx.font = Math.round(11 * ratio) + "px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.lineWidth = 1.5 * ratio;
      ctx.setLineDash([6 * ratio, 4 * ratio]);
      chart.thresholds.forEach(function (t, i) {
        var y = Math.round(u.valToPos(t.value, "y", true));
        var colour = LINE_COLOURS[i % LINE_COLOURS.length];
        ctx.strokeStyle = colour;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(right, y);
        ctx.stroke();
        ctx.fillStyle = colour;
        ctx.fillText(t.level, left + 4 * ratio, y - 2 * ratio);
      });
      ctx.restore();
    };
  }

  function tooltip(chart) {
    var tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    return {
      init: function (u) { u.over.appendChild(tip); },
      setCursor: function (u) {
        var i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
        tip.textContent = fullFormat.format(new Date(chart.x[i] * 1000)) + " — " +
          withUnit(chart.y[i], chart) + (chart.abnormal[i] ? " ⚠ " + words.abnormal : "");
        tip.hidden = false;
        var left = u.cursor.left + 12;
        if (left + tip.offsetWidth > u.over.clientWidth) left = u.cursor.left - tip.offsetWidth - 12;
        tip.style.left = Math.max(0, left) + "px";
        tip.style.top = Math.max(0, u.cursor.top - 32) + "px";
      }
    };
  }

  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || source === drawnFrom) return;
    drawn.forEach(function (u) { u.destroy(); });
    drawn = [];
    drawnFrom = source;
    var wordsNode = document.getElementById("chart-texts");
    words = wordsNode ? JSON.parse(wordsNode.textContent) : {};
    JSON.parse(source.textContent).forEach(drawChart);
  }

  function drawChart(chart) {
    var figure = document.getElementById(chart.key);
    var area = figure && figure.querySelector(".chart-area");
    if (!area) return;
    if (chart.x.length === 0) {
      area.textContent = words.no_data;
      return;
    }
    var data = [chart.x, chart.y];
    var series = [
      { label: words.date },
      { label: chart.title, stroke: READING, width: 2,
        points: { show: true, size: 6, fill: READING, stroke: READING } }
    ];
    if (chart.abnormal.some(Boolean)) {
      data.push(chart.y.map(function (v, i) { return chart.abnormal[i] ? v : null; }));
      series.push({ label: "⚠ " + words.abnormal, stroke: ABNORMAL, width: 2,
                    paths: function () { return null; },
                    points: { show: true, size: 14, width: 2.5, stroke: ABNORMAL,
                              fill: "rgba(0,0,0,0)" } });
    }
    chart.thresholds.forEach(function (t, i) {
      data.push(chart.x.map(function () { return t.value; }));
      // A series for the legend and the y scale; drawLines draws it.
      series.push({ label: t.label, stroke: LINE_COLOURS[i % LINE_COLOURS.length],
                    dash: [6, 4], width: 1.5, points: { show: false },
                    paths: function () { return null; } });
    });
    var hooks = tooltip(chart);
    // One reading still gets a day around it.
    var first = chart.x[0], last = chart.x[chart.x.length - 1];
    var pad = first === last ? DAY / 2 : 0;
    var width = Math.min(figure.clientWidth || 600, 900);
    drawn.push(new uPlot({
      width: width,
      height: 240,
      series: series,
      legend: { live: false, markers: { dash: function (u, i) {
        return u.series[i].dash ? "dashed" : "solid";
      } } },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: { x: { time: true, range: function () { return [first - pad, last + pad]; } } },
      axes: [
        { space: 110,
          values: function (u, splits, axis, space, increment) {
            var format = increment < DAY ? hourFormat : dayFormat;
            return splits.map(function (s) { return format.format(new Date(s * 1000)); });
          } },
        { label: chart.unit_label, size: 60,
          values: function (u, splits) { return splits.map(numberFormat.format); } }
      ],
      hooks: { init: [hooks.init], setCursor: [hooks.setCursor], draw: [drawLines(chart)] }
    }, data, area));
  }

  draw();
  document.body.addEventListener("htmx:afterSettle", draw);
})();
