// Alerts and metrics pages. The fixture judges alerts over 10 s with a p99 threshold of
// 1 ms and one request minimum, so a few requests make SlowResponse fire.
const { test, expect, signIn, expectAccessible } = require("../fixtures");
const { openPage } = require("../helpers/admin");

async function traffic(server, n = 20) {
  const token = await server.token();
  for (let i = 0; i < n; i++) await server.api("GET", "/api/v1/book?limit=5", { token });
  return token;
}

test("the alerts page lists SlowResponse once it fires", async ({ page, server }) => {
  const token = await traffic(server);
  await expect
    .poll(async () => {
      await server.api("GET", "/api/v1/book", { token });
      const r = await server.api("GET", "/api/v1/alerts", { token });
      return r.body.data.map((a) => a.name);
    }, { timeout: 30_000 })
    .toContain("SlowResponse");
  await signIn(page, server);
  await openPage(page, "Alerts");
  const row = page.getByRole("row").filter({ hasText: "SlowResponse" }).first();
  await expect(row).toBeVisible();
  await expect(row).toContainText("warning");
  await expect(row).toContainText(/p99 latency/);
  await expect(page.getByRole("heading", { name: /^Firing \(\d+\)$/ })).toBeVisible();
  await expect(page.getByRole("heading", { name: /^Resolved \(\d+\)$/ })).toBeVisible();
  await expectAccessible(page, "alerts");
});

test("the metrics page draws three charts with lines after some requests", async ({ page, server }) => {
  await traffic(server);
  await signIn(page, server);
  await openPage(page, "Metrics");
  for (const [name, unit] of [["Requests per second", "req/s"], ["Error rate", "%"], ["p99 latency", "ms"]]) {
    const figure = page.getByRole("figure", { name: `${name} (${unit})` });
    await expect(figure).toBeVisible();
    await expect(figure.getByRole("img", { name: `${name} (${unit})` })).toBeVisible();
  }
  // Some requests were counted: the rate's summary names a highest value above zero.
  const rate = page.getByRole("img", { name: "Requests per second (req/s)" });
  await expect
    .poll(async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      const text = await rate.evaluate((svg) => document.getElementById(svg.getAttribute("aria-describedby")).textContent);
      const m = /highest ([\d.]+) req\/s/.exec(text);
      return m ? Number(m[1]) : 0;
    }, { timeout: 20_000 })
    .toBeGreaterThan(0);
  const p99 = page.getByRole("img", { name: "p99 latency (ms)" });
  await expect(p99).toHaveAccessibleDescription(/p99 latency over the last \d+ minutes: latest [\d.]+ ms/);
  // The lines are drawn: every chart has a path with points (or a dot for a lone point).
  for (const name of ["Requests per second (req/s)", "Error rate (%)", "p99 latency (ms)"]) {
    const drawn = await page.getByRole("img", { name }).evaluate((svg) => {
      const path = svg.querySelector("path.line");
      return (path ? (path.getAttribute("d").match(/[ML]/g) || []).length : 0) + svg.querySelectorAll("circle.dot").length;
    });
    expect(drawn, `${name} has a line`).toBeGreaterThan(0);
  }
  await expectAccessible(page, "metrics");
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByRole("figure", { name: "p99 latency (ms)" })).toBeVisible();
  await expectAccessible(page, "metrics at phone width");
});

test("an interval with no answers is a gap in the error rate and p99 lines, not a zero", async ({ page, server }) => {
  // A series with ten quiet intervals in the middle, served in place of this instance's.
  const now = Math.floor(Date.now() / 10_000) * 10_000;
  const points = Array.from({ length: 60 }, (_, i) => {
    const quiet = i >= 20 && i < 30;
    return {
      at: new Date(now - (59 - i) * 10_000).toISOString(),
      requests: quiet ? 0 : 6,
      errors: i === 5 ? 3 : 0,
      p99_ms: quiet ? null : i === 45 ? 40 : i === 59 ? 20 : 12.5,
    };
  });
  await page.route("**/api/v1/metrics/series", (route) =>
    route.fulfill({ json: { success: true, data: { interval_seconds: 10, points } } }),
  );
  await signIn(page, server);
  await openPage(page, "Metrics");
  const segments = (name) =>
    page.getByRole("img", { name }).evaluate((svg) => {
      const d = svg.querySelector("path.line")?.getAttribute("d") || "";
      return { moves: (d.match(/M/g) || []).length, points: (d.match(/[ML]/g) || []).length };
    });
  // The rate is zero in the quiet intervals: one unbroken line of 60 points.
  expect(await segments("Requests per second (req/s)")).toEqual({ moves: 1, points: 60 });
  // Error rate and p99 have no value there: two lines, 50 points between them.
  expect(await segments("Error rate (%)")).toEqual({ moves: 2, points: 50 });
  expect(await segments("p99 latency (ms)")).toEqual({ moves: 2, points: 50 });
  await expect(page.getByRole("img", { name: "p99 latency (ms)" })).toHaveAccessibleDescription(
    "p99 latency over the last 10 minutes: latest 20.0 ms, highest 40.0 ms, lowest 12.5 ms.",
  );
  await expect(page.getByRole("img", { name: "Error rate (%)" })).toHaveAccessibleDescription(/highest 50\.00 %, lowest 0\.00 %/);
});

test("firing alerts are listed apart from resolved ones, in the API's order, in their units", async ({ page, server }) => {
  const alerts = [
    { name: "HighErrorRate", severity: "critical", state: "firing", since: "2026-11-30T12:01:05Z", until: null, value: 0.043, threshold: 0.01, summary: "errors are high" },
    { name: "SlowResponse", severity: "warning", state: "resolved", since: "2026-11-30T11:50:00Z", until: "2026-11-30T11:56:10Z", value: 1.84, threshold: 1, summary: "was slow, later" },
    { name: "SlowResponse", severity: "warning", state: "resolved", since: "2026-11-30T11:40:00Z", until: "2026-11-30T11:46:10Z", value: 2.5, threshold: 1, summary: "was slow, earlier" },
  ];
  await page.route("**/api/v1/alerts", (route) => route.fulfill({ json: { success: true, data: alerts } }));
  await signIn(page, server);
  await openPage(page, "Alerts");
  await expect(page.getByRole("heading", { name: "Firing (1)" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Resolved (2)" })).toBeVisible();
  const firing = page.getByRole("table", { name: "Firing alerts" }).getByRole("row");
  await expect(firing).toHaveCount(2);
  await expect(firing.nth(1)).toContainText("HighErrorRate");
  await expect(firing.nth(1)).toContainText("4.30 %");
  await expect(firing.nth(1)).toContainText("1.00 %");
  const resolved = page.getByRole("table", { name: "Resolved alerts" }).getByRole("row");
  await expect(resolved).toHaveCount(3);
  await expect(resolved.nth(1)).toContainText("was slow, later");
  await expect(resolved.nth(1)).toContainText("1840.0 ms");
  await expect(resolved.nth(2)).toContainText("was slow, earlier");
  await expectAccessible(page, "alerts, firing and resolved");
});
