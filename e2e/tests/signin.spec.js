// Signing in and out, what a wrong password shows, and a copied tab.
const { expect, signIn, expectAccessible } = require("../fixtures");
const { test } = require("../helpers/records");

/** The refresh token the console keeps in the tab's sessionStorage. */
function storedRefresh(page) {
  return page.evaluate(() => sessionStorage.getItem("plinth.console.refresh"));
}

test("the admin signs in, sees the whole menu, and signs out", async ({ page, server }) => {
  await signIn(page, server);
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const item of ["Models", "API keys", "Users", "Audit", "Flags", "Alerts", "Metrics"]) {
    await expect(nav.getByRole("link", { name: item })).toBeVisible();
  }
  const refresh = await storedRefresh(page);
  expect(refresh).toBeTruthy();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
  // The tab forgot the token, and the server revoked it: it refreshes nothing any more.
  expect(await storedRefresh(page)).toBeNull();
  const again = await server.api("POST", "/api/v1/auth/refresh", { body: { refresh_token: refresh } });
  expect(again.status).toBe(401);
  await page.reload();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
});

test("a copied tab asks to sign in instead of spending the session's refresh token", async ({ page, server }) => {
  await signIn(page, server);
  const refresh = await storedRefresh(page);
  // window.open copies the tab's sessionStorage, as the browser's "Duplicate tab" does.
  const [copy] = await Promise.all([page.waitForEvent("popup"), page.evaluate(() => window.open(location.href))]);
  await expect(copy.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
  expect(await storedRefresh(copy)).toBeNull();
  // The first tab's session is whole: its reload refreshes with the token it holds.
  expect(await storedRefresh(page)).toBe(refresh);
  await page.reload();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  expect(await storedRefresh(page)).not.toBe(refresh);
  // Both tabs work apart: the copy signs in to a session of its own.
  await copy.getByLabel("Email").fill(server.admin.email);
  await copy.getByLabel("Password").fill(server.admin.password);
  await copy.getByRole("button", { name: "Sign in" }).click();
  await expect(copy.getByRole("button", { name: "Sign out" })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
});

test("a session ended elsewhere sends the page to the sign-in, and back after it", async ({ page, server }) => {
  const token = await server.token();
  const r = await server.api("POST", "/api/v1/book", { token, body: { name: "Orphaned edit", pages: 5 } });
  expect(r.status).toBe(201);
  await signIn(page, server);
  await page.goto(server.url + `/admin/#/m/book/${r.body.data.id}`);
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("5");
  // The session is logged out from somewhere else: its access token dies with it.
  const out = await server.api("POST", "/api/v1/auth/logout", { body: { refresh_token: await storedRefresh(page) } });
  expect(out.status).toBe(204);
  await page.getByLabel("pages", { exact: true }).fill("6");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
  await page.getByLabel("Email").fill(server.admin.email);
  await page.getByLabel("Password").fill(server.admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "book: Orphaned edit" })).toBeVisible();
  expect((await server.api("GET", `/api/v1/book/${r.body.data.id}`, { token })).body.data.pages).toBe(5);
});

test("a wrong password is refused with a message and no session", async ({ page, server }) => {
  await page.goto(server.url + "/admin");
  await page.getByLabel("Email").fill(server.admin.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText(/invalid|incorrect|wrong/i);
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
});

test("a reload keeps the session", async ({ page, server }) => {
  await signIn(page, server);
  await page.reload();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
});

test("the sign-in page has no serious accessibility violation", async ({ page, server }) => {
  await page.goto(server.url + "/admin");
  await expect(page.getByLabel("Email")).toBeVisible();
  await expectAccessible(page, "sign in");
});
