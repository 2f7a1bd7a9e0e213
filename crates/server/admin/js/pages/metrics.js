// Metrics (admins): request rate, error rate and p99 latency of this instance over the last
// ten minutes, from GET /api/v1/metrics/series, redrawn every 10 s. The charts are plain
// SVG built with the DOM (no library, nothing inline the CSP would refuse); each is a
// <figure> whose caption and visually-hidden summary say what the line shows.

import { h, clear, notice, errorText } from "../ui.js";

const REFRESH_MS = 10000;
const W = 480;
const H = 180;
const PAD = { left: 52, right: 12, top: 12, bottom: 28 };

/** The three series of the API's points: values per point, null where there is none. */
function series(data) {
  const step = data.interval_seconds || 10;
  const pts = data.points || [];
  return [
    {
      id: "rate",
      title: "Requests per second",
      unit: "req/s",
      values: pts.map((p) => (p.requests ?? 0) / step),
      digits: 2,
    },
    {
      id: "errors",
      title: "Error rate",
      unit: "%",
      values: pts.map((p) => (p.requests ? (100 * (p.errors ?? 0)) / p.requests : null)),
      digits: 2,
    },
    {
      id: "p99",
      title: "p99 latency",
      unit: "ms",
      values: pts.map((p) => (p.p99_ms === null || p.p99_ms === undefined ? null : p.p99_ms)),
      digits: 1,
    },
  ];
}

function fmt(v, digits) {
  return v === null || v === undefined ? "no data" : Number(v).toFixed(digits);
}

/** One chart: axes with min/max labels, the line (gaps where there is no value), a summary. */
function chart(s, points, step) {
  const known = s.values.filter((v) => v !== null);
  const min = 0;
  const max = known.length ? Math.max(...known) : 0;
  const top = max > 0 ? max : 1;
  const n = Math.max(s.values.length, 2);
  const x = (i) => PAD.left + (i * (W - PAD.left - PAD.right)) / (n - 1);
  const y = (v) => H - PAD.bottom - ((v - min) * (H - PAD.top - PAD.bottom)) / (top - min);

  let d = "";
  let pen = false;
  const dots = [];
  s.values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const prevGap = i === 0 || s.values[i - 1] === null;
    const nextGap = i === s.values.length - 1 || s.values[i + 1] === null;
    if (prevGap && nextGap) dots.push(h("svg:circle", { class: "dot", cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
    pen = true;
  });

  const latest = [...s.values].reverse().find((v) => v !== null);
  const span = Math.round((points.length * step) / 60);
  const summary = known.length
    ? `${s.title} over the last ${span} minutes: latest ${fmt(latest, s.digits)} ${s.unit}, highest ${fmt(max, s.digits)} ${s.unit}, lowest ${fmt(Math.min(...known), s.digits)} ${s.unit}.`
    : `${s.title}: no data in the last ${span} minutes.`;
  const titleId = `chart-${s.id}-title`;
  const descId = `chart-${s.id}-desc`;
  const bottom = H - PAD.bottom;
  return h(
    "figure",
    { class: "chart card", "aria-labelledby": titleId, dataset: { chart: s.id } },
    h("figcaption", { id: titleId }, h("strong", null, s.title), ` (${s.unit})`),
    h(
      "svg:svg",
      { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": titleId, "aria-describedby": descId, preserveAspectRatio: "xMidYMid meet" },
      h("svg:line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom }),
      h("svg:line", { class: "axis", x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom }),
      h("svg:text", { x: PAD.left - 6, y: PAD.top + 8, "text-anchor": "end" }, fmt(top, s.digits)),
      h("svg:text", { x: PAD.left - 6, y: bottom, "text-anchor": "end" }, fmt(min, s.digits)),
      h("svg:text", { x: PAD.left, y: H - 8, "text-anchor": "start" }, `-${span} min`),
      h("svg:text", { x: W - PAD.right, y: H - 8, "text-anchor": "end" }, "now"),
      d ? h("svg:path", { class: "line", d: d.trim() }) : null,
      dots,
    ),
    h("p", { id: descId, class: "visually-hidden" }, summary),
  );
}

export default async function render(ctx) {
  ctx.setTitle("Metrics");
  const body = h("div", { class: "charts", id: "charts" });
  const status = h("div");
  const updated = h("p", { class: "muted" });

  async function load() {
    let data;
    try {
      data = (await ctx.api.api("GET", "/metrics/series")).data;
    } catch (err) {
      if (!ctx.current()) return;
      clear(status, notice("error", h("p", null, `Could not read the metrics: ${errorText(err)}`)));
      return;
    }
    if (!ctx.current()) return;
    clear(status);
    const step = data.interval_seconds || 10;
    clear(body, series(data).map((s) => chart(s, data.points || [], step)));
    updated.textContent = `This instance, ${step}-second steps. Updated ${new Date().toLocaleTimeString()}; refreshed every 10 seconds.`;
  }

  ctx.main.append(
    h("h1", null, "Metrics"),
    h("div", { class: "actions" }, h("button", { type: "button", on: { click: () => load() } }, "Refresh")),
    updated,
    status,
    body,
  );
  await load();
  const timer = setInterval(load, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
