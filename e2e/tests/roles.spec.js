// A `user` in the console: no admin pages in the menu, each refused when forced, and the
// API the page would call refuses the user's token too.
const { test, expect, signIn, expectAccessible } = require("../fixtures");

const ADMIN_PAGES = [
  { item: "Users", hash: "#/users", api: "/api/v1/users" },
  { item: "Audit", hash: "#/audit", api: "/api/v1/audit" },
  { item: "Flags", hash: "#/flags", api: "/api/v1/flags" },
  { item: "Alerts", hash: "#/alerts", api: "/api/v1/alerts" },
  { item: "Metrics", hash: "#/metrics", api: "/api/v1/metrics/series" },
];

test("a user sees no admin page in the menu, is refused each one, and so is their token", async ({ page, server }) => {
  const user = await server.createUser("user");
  await signIn(page, server, user.email, user.password);
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "API keys" })).toBeVisible();
  for (const p of ADMIN_PAGES) await expect(nav.getByRole("link", { name: p.item })).toHaveCount(0);

  const token = await server.token(user.email, user.password);
  for (const p of ADMIN_PAGES) {
    await page.goto(`${server.url}/admin${p.hash}`);
    await expect(page.getByRole("heading", { level: 1, name: "Not allowed" })).toBeVisible();
    await expect(page.getByRole("heading", { level: 1, name: p.item })).toHaveCount(0);
    const r = await server.api("GET", p.api, { token });
    expect(r.status, `${p.api} with a user's token`).toBe(403);
    expect(r.body.error.code).toBe("FORBIDDEN");
  }
  const verify = await server.api("GET", "/api/v1/audit/verify", { token });
  expect(verify.status).toBe(403);
  await expectAccessible(page, "not allowed");
});
