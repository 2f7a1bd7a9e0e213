// Alerts (admins): this instance's in-process alerts, firing first, then the last resolved,
// refreshed every 5 s while the page is open (the timer ends with the page).

import { h, clear, notice, errorText, when } from "../ui.js";
import { table } from "../paging.js";

const REFRESH_MS = 5000;

/** A measured value in the unit of its alert: a share as %, seconds as ms. */
function measure(alert, v) {
  if (v === null || v === undefined) return "—";
  if (alert.name === "HighErrorRate") return `${(v * 100).toFixed(2)} %`;
  if (alert.name === "SlowResponse") return `${(v * 1000).toFixed(1)} ms`;
  return String(v);
}

export default async function render(ctx) {
  ctx.setTitle("Alerts");
  const body = h("div", { id: "alerts-body" });
  const updated = h("p", { class: "muted" });
  const refresh = h("button", { type: "button", on: { click: () => load() } }, "Refresh");

  let last = null;

  async function load() {
    let alerts;
    try {
      alerts = (await ctx.api.api("GET", "/alerts")).data;
    } catch (err) {
      if (!ctx.current()) return;
      last = null;
      clear(body, notice("error", h("p", null, `Could not read the alerts: ${errorText(err)}`)));
      return;
    }
    if (!ctx.current()) return;
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshed every 5 seconds.`;
    // Redraw only on a change, so a keyboard user's focus in the tables is not thrown away
    // every five seconds.
    const seen = JSON.stringify(alerts);
    if (seen === last) return;
    last = seen;
    const firing = alerts.filter((a) => a.state === "firing");
    const resolved = alerts.filter((a) => a.state !== "firing");
    if (!alerts.length) {
      clear(body, notice("ok", h("p", null, "No alerts: nothing is firing and nothing resolved recently.")));
      return;
    }
    const severity = (a) => h("span", { class: a.severity === "critical" ? "badge bad" : "badge warn" }, a.severity);
    clear(
      body,
      h("h2", null, `Firing (${firing.length})`),
      firing.length
        ? table("Firing alerts", ["Alert", "Severity", "Since", "Value", "Threshold", "Summary"],
            firing.map((a) => [h("strong", null, a.name), severity(a), when(a.since), measure(a, a.value), measure(a, a.threshold), a.summary]))
        : notice("ok", h("p", null, "No alerts firing.")),
      h("h2", null, `Resolved (${resolved.length})`),
      resolved.length
        ? table("Resolved alerts", ["Alert", "Severity", "Since", "Until", "Last value", "Threshold", "Summary"],
            resolved.map((a) => [a.name, severity(a), when(a.since), when(a.until), measure(a, a.value), measure(a, a.threshold), a.summary]))
        : h("p", { class: "muted" }, "No resolved alerts."),
    );
  }

  ctx.main.append(h("h1", null, "Alerts"), h("div", { class: "actions" }, refresh), updated, body);
  await load();
  const timer = setInterval(load, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
