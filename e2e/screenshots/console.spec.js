// The README's console screenshots (docs/img/console-*.png), taken with sample data.
const path = require("node:path");
const { test, expect, signIn } = require("../fixtures");
const { createRecord, png } = require("../helpers/records");

const OUT = path.resolve(__dirname, "..", "..", "docs", "img");

const BOOKS = [
  ["Dune", 412, "fiction", "Spice, sand and a desert planet's politics."],
  ["A Brief History of Time", 256, "science", "From the big bang to black holes."],
  ["The Guns of August", 511, "history", "The first month of the First World War."],
  ["Foundation", 255, "fiction", "A mathematician foresees the fall of an empire."],
  ["Cosmos", 365, "science", "A personal voyage through the universe."],
  ["SPQR", 608, "history", "A history of ancient Rome."],
  ["The Left Hand of Darkness", 304, "fiction", "An envoy on a world of ambisexual people."],
  ["The Selfish Gene", 360, "science", "Evolution seen from the gene's point of view."],
];

test("console screenshots", async ({ page, browser, server }) => {
  test.setTimeout(180_000);
  const token = await server.token();
  const made = [];
  for (const [name, pages, genre, summary] of BOOKS) {
    made.push(await createRecord(server, token, "book", { name, pages, genre, summary, in_print: true }));
  }
  const form = new FormData();
  form.append("data", JSON.stringify({ name: "Hyperion", pages: 482, genre: "fiction", summary: "Pilgrims tell their tales." }));
  form.append("cover", new Blob([png(64)], { type: "image/png" }), "hyperion.png");
  await server.api("POST", "/api/v1/book", { token, form });
  await server.api("PATCH", `/api/v1/book/${made[0].id}`, { token, body: { pages: 896 } });
  await server.api("DELETE", `/api/v1/book/${made[5].id}`, { token });

  await signIn(page, server);
  await page.goto(server.url + "/admin#/m/book");
  await expect(page.getByRole("heading", { name: "Records of book" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Dune" })).toBeVisible();
  await page.screenshot({ path: path.join(OUT, "console-records.png") });

  // An edit refused because the record changed since it was opened.
  await page.goto(server.url + `/admin#/m/book/${made[3].id}`);
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("255");
  await server.api("PATCH", `/api/v1/book/${made[3].id}`, { token, body: { pages: 296 } });
  await page.getByLabel("pages", { exact: true }).fill("260");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("changed since you opened it")).toBeVisible();
  await page.screenshot({ path: path.join(OUT, "console-conflict.png") });

  await page.goto(server.url + "/admin#/audit");
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  await page.getByRole("button", { name: /verify/i }).click();
  await expect(page.getByText(/intact/i).first()).toBeVisible();
  await page.screenshot({ path: path.join(OUT, "console-audit.png") });

  // Some traffic over four of the series' 10-second steps, so the charts have lines.
  const until = Date.now() + 40_000;
  while (Date.now() < until) {
    const reads = Array.from({ length: 20 }, (_, i) =>
      server.api("GET", i % 4 ? "/api/v1/book?limit=5" : `/api/v1/book/${made[i % made.length].id}`, { token }),
    );
    await Promise.all(reads);
    await new Promise((r) => setTimeout(r, 150));
  }
  await page.goto(server.url + "/admin#/metrics");
  await expect(page.locator("svg").first()).toBeVisible();
  await page.waitForTimeout(500);
  await page.screenshot({ path: path.join(OUT, "console-metrics.png") });

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const small = await phone.newPage();
  await signIn(small, server);
  await small.goto(server.url + "/admin#/m/book");
  await expect(small.getByRole("link", { name: "Dune" })).toBeVisible();
  await small.screenshot({ path: path.join(OUT, "console-phone.png") });
  await phone.close();
});
