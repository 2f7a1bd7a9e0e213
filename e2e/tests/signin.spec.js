// Signing in and out, and what a wrong password shows.
const { test, expect, signIn, expectAccessible } = require("../fixtures");

test("the admin signs in, sees the whole menu, and signs out", async ({ page, server }) => {
  await signIn(page, server);
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const item of ["Models", "API keys", "Users", "Audit", "Flags", "Alerts", "Metrics"]) {
    await expect(nav.getByRole("link", { name: item })).toBeVisible();
  }
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
  // Reloading does not bring the session back: the refresh token was revoked and forgotten.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
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
