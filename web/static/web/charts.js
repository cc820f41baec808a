// Charts of the patient's measurements over time (uPlot), with the alert thresholds of the
// current pathway step drawn as dashed lines. The tables next to them carry the same values
// for screen readers and keyboard users.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") return;
  var series = JSON.parse(source.textContent);
  series.forEach(function (s) {
    var figure = document.querySelector('figure.chart[data-code="' + s.code + '"] .chart-area');
    if (!figure || s.x.length === 0) return;
    var data = [s.x, s.y];
    var lines = [{}, { label: s.label + " (" + s.unit + ")", stroke: "#153e75", width: 2,
                       points: { show: true } }];
    s.thresholds.forEach(function (t) {
      data.push(s.x.map(function () { return t.value; }));
      lines.push({ label: t.label + " (" + t.op + " " + t.value + ")", stroke: "#8a1c1c",
                   dash: [6, 4], width: 1.5, points: { show: false } });
    });
    var width = Math.min(figure.parentElement.clientWidth || 600, 900);
    new uPlot({ width: width, height: 220, series: lines,
                scales: { x: { time: true } } }, data, figure);
  });
})();
