// Charts drawn as SVG by hand: a line chart of series over time and a bar chart of totals.
import { h } from "./ui.js";

const W = 640;

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

/**
 * lineChart({title, labels: [x labels], series: [{name, values: [numbers]}], format})
 * Each series in its own colour (c0..c5), a legend, and a <title> on every point.
 */
export function lineChart({ title, labels, series, format = String, height = 180, width = W }) {
  const pad = { left: 64, right: 8, top: 8, bottom: 22 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const n = Math.max(1, labels.length - 1);
  const x = (i) => pad.left + (innerW * i) / n;
  const y = (v) => pad.top + innerH - (innerH * v) / max;
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(h("svg:line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    svg.append(h("svg:text", { class: "tick", x: pad.left - 4, y: y(v) + 3, "text-anchor": "end" }, format(v)));
  }
  const every = Math.max(1, Math.ceil(labels.length / 6));
  labels.forEach((label, i) => {
    if (i % every === 0 || i === labels.length - 1) {
      const anchor = i === 0 ? "start" : i === labels.length - 1 ? "end" : "middle";
      svg.append(h("svg:text", { class: "tick", x: x(i), y: height - 6, "text-anchor": anchor }, label));
    }
  });
  series.forEach((s, k) => {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(h("svg:polyline", { points, class: `line k${k % 6}` }));
    s.values.forEach((v, i) => {
      if (!v) return;
      svg.append(h("svg:circle", { cx: x(i), cy: y(v), r: 2.5, class: `dot k${k % 6}` },
        h("svg:title", {}, `${s.name} at ${labels[i]}: ${format(v)}`)));
    });
  });
  const legend = h("div", { class: "legend" },
    series.map((s, k) => h("span", {}, h("i", { class: `c${k % 6}` }), s.name)));
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg, series.length > 1 ? legend : null);
}

/** barChart({title, items: [{label, value, text}]}): horizontal bars, largest first as given. */
export function barChart({ title, items, format = String, width = 420 }) {
  if (!items.length) {
    return h("figure", { class: "chart" }, h("figcaption", {}, title), h("p", { class: "muted" }, "No data yet."));
  }
  const row = 24;
  const labelW = 150;
  const height = Math.max(row, items.length * row) + 4;
  const max = Math.max(0, ...items.map((i) => i.value)) || 1;
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  items.forEach((item, i) => {
    const top = i * row + 2;
    const bar = ((width - labelW - 110) * item.value) / max;
    svg.append(h("svg:text", { class: "bar-label", x: labelW - 6, y: top + 14, "text-anchor": "end" },
      item.label.length > 24 ? item.label.slice(0, 23) + "…" : item.label));
    svg.append(h("svg:rect", { x: labelW, y: top + 3, width: Math.max(1, bar), height: row - 8, class: `dot k${i % 6}` },
      h("svg:title", {}, `${item.label}: ${item.text ?? format(item.value)}`)));
    svg.append(h("svg:text", { class: "tick", x: labelW + bar + 6, y: top + 15 }, item.text ?? format(item.value)));
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg);
}
