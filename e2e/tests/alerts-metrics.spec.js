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
