// usagemeter dashboard: draws the stacked spend charts from the page's JSON blocks, and signs in.
// No build step: plain ES2017 over the vendored uPlot (window.uPlot).
"use strict";

const PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"];

function stacked(series) {
  // uPlot draws series in order: the cumulative sums, widest first, each filled down to zero,
  // so every band shows one group's share; the legend shows the group's own value.
  const sums = [];
  let running = null;
  for (const s of series) {
    running = running ? running.map((v, i) => v + s.values[i]) : s.values.slice();
    sums.push(running);
  }
  return sums.reverse();
}

function drawChart(el) {
  const block = document.getElementById(el.dataset.chart);
  if (!block) return;
  const data = JSON.parse(block.textContent);
  if (!data.x.length) {
    el.textContent = "no spend in this range";
    el.classList.add("empty");
    return;
  }
  const tz = el.dataset.tz || "UTC";
  const raw = data.series.map((s) => s.values).reverse();
  const labels = data.series.map((s) => s.label).reverse();
  const n = labels.length;
  const opts = {
    width: Math.max(el.clientWidth, 240),
    height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
    cursor: { points: { show: false } },
    legend: { live: true },
    scales: { x: { time: true } },
    axes: [{}, { values: (u, ticks) => ticks.map((v) => "$" + v.toFixed(v < 10 ? 2 : 0)), size: 60 }],
    series: [{}].concat(labels.map((label, i) => {
      const color = PALETTE[(n - 1 - i) % PALETTE.length];
      return {
        label: label,
        stroke: color,
        fill: color + "cc",
        width: 1,
        value: (u, v, si, idx) => (idx == null ? "" : "$" + raw[si - 1][idx].toFixed(4)),
      };
    })),
  };
  const plot = new uPlot(opts, [data.x].concat(stacked(data.series)), el);
  window.addEventListener("resize", () => plot.setSize({ width: Math.max(el.clientWidth, 240), height: 240 }));
}

function signIn(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = form.querySelector("input[name=key]").value.trim();
    const answer = await fetch("/dashboard/session", {
      method: "POST",
      headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    if (answer.ok) {
      const here = window.location.pathname.startsWith("/dashboard/log") ? "/dashboard" : window.location.href;
      window.location.assign(here);
    } else {
      let note = form.parentElement.querySelector("[role=alert]");
      if (!note) {
        note = document.createElement("p");
        note.className = "note";
        note.setAttribute("role", "alert");
        form.before(note);
      }
      note.textContent = "That key was refused (" + answer.status + ").";
    }
  });
}

document.querySelectorAll("[data-chart]").forEach(drawChart);
const login = document.getElementById("login");
if (login) signIn(login);
