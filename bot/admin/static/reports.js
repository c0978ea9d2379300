// Draws the report's chart from its <script type="application/json" id="chart-data"> block (the numbers
// are the table's under it; without JavaScript the table is the report).
(function () {
  var data = document.getElementById("chart-data");
  var box = document.getElementById("chart");
  if (!data || !box || !window.echarts) return;
  var spec = JSON.parse(data.textContent);
  var chart = echarts.init(box);
  chart.setOption({
    animation: false,  // the numbers at once (and a screenshot shows them, not a bar half grown)
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 16, right: 24, top: 48, bottom: 40, containLabel: true },  // room for ¥1,000,000 on the axis
    xAxis: { type: "category", data: spec.categories },
    yAxis: { type: "value", minInterval: 1 },
    series: spec.series.map(function (s) {
      return { name: s.name, type: "bar", stack: spec.type === "funnel" || spec.stack ? "all" : null, data: s.data };
    })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
