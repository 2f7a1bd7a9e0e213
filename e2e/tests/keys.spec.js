// API keys in the console: the secret shown once, copied, working, gone after leaving; revoke.
const { test, expect, signIn, expectAccessible, unique } = require("../fixtures");
const { openPage, confirmDialog } = require("../helpers/admin");

test("a new key's secret is shown once, copies, works, and stops working when revoked", async ({ page, context, server }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await signIn(page, server);
  await openPage(page, "API keys");
  const name = unique("import job");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Expires").fill("2031-02-03T04:05");
  await page.getByRole("button", { name: "Create key" }).click();

  const box = page.getByRole("region", { name: `New key: ${name}` });
  await expect(box).toContainText("It will not be shown again");
  const secret = (await box.getByText(/^plk_/).textContent()).trim();
  expect(secret).toMatch(/^plk_[0-9a-f]{8}_/);
  await box.getByRole("button", { name: "Copy" }).click();
  await expect(box.getByText("Copied")).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  await expectAccessible(page, "API keys with a secret showing");

  // The key acts as the admin against the API, and expires when the form said (local time).
  const me = await server.api("GET", "/api/v1/auth/me", { headers: { "X-API-Key": secret } });
  expect(me.status).toBe(200);
  expect(me.body.data.email).toBe(server.admin.email);
  const keys = await server.api("GET", "/api/v1/auth/api-keys", { token: await server.token() });
  const made = keys.body.data.find((k) => k.name === name);
  const expires = await page.evaluate(() => new Date("2031-02-03T04:05").getTime());
  expect(new Date(made.expires_at).getTime()).toBe(expires);

  // Leaving the page and coming back: the key is listed, its secret is not.
  await openPage(page, "Models");
  await openPage(page, "API keys");
  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row).toBeVisible();
  await expect(row.getByText("active")).toBeVisible();
  await expect(page.getByText(secret)).toHaveCount(0);
  await expect(page.getByRole("region", { name: `New key: ${name}` })).toHaveCount(0);

  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  await confirmDialog(page, "Revoke");
  await expect(page.getByRole("main").getByRole("status").filter({ hasText: `The key "${name}" was revoked` })).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: name }).getByText("revoked")).toBeVisible();
  const after = await server.api("GET", "/api/v1/auth/me", { headers: { "X-API-Key": secret } });
  expect(after.status).toBe(401);
});

test("a user sees only their own keys and no toggle for every key", async ({ page, server }) => {
  const other = await server.createUser("user");
  const otherToken = await server.token(other.email, other.password);
  const otherName = unique("someone else's key");
  const made = await server.api("POST", "/api/v1/auth/api-keys", { token: otherToken, body: { name: otherName } });
  expect(made.status).toBe(201);

  const me = await server.createUser("user");
  await signIn(page, server, me.email, me.password);
  await openPage(page, "API keys");
  await expect(page.getByText("No API keys yet.")).toBeVisible();
  await expect(page.getByLabel("Show every account's keys")).toHaveCount(0);
  await expect(page.getByText(otherName)).toHaveCount(0);

  // The admin's toggle shows every account's keys, the other user's included.
  const admin = await page.context().newPage();
  await signIn(admin, server);
  await openPage(admin, "API keys");
  await expect(admin.getByText(otherName)).toHaveCount(0);
  await admin.getByLabel("Show every account's keys").check();
  await expect(admin.getByRole("heading", { name: "Every key" })).toBeVisible();
  await expect(admin.getByRole("row").filter({ hasText: otherName })).toBeVisible();
});

test("a key is created, copied and revoked with the keyboard alone", async ({ page, context, server }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await signIn(page, server);
  await openPage(page, "API keys");
  const name = unique("keyboard key");
  await page.getByLabel("Name").focus();
  await page.keyboard.type(name);
  await page.keyboard.press("Enter");
  // Focus moves to the new key's heading; the next Tab stops reach Copy.
  const heading = page.getByRole("heading", { name: `New key: ${name}` });
  await expect(heading).toBeFocused();
  const copy = page.getByRole("button", { name: "Copy" });
  for (let i = 0; i < 5 && !(await copy.evaluate((b) => b === document.activeElement)); i++) await page.keyboard.press("Tab");
  await expect(copy).toBeFocused();
  await page.keyboard.press("Space");
  await expect(page.getByRole("main").getByText("Copied", { exact: true })).toBeVisible();

  // At phone width the long secret wraps inside its box: the page does not scroll sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await expectAccessible(page, "a new key at phone width");

  const revoke = page.getByRole("button", { name: `Revoke ${name}` });
  await revoke.focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog");
  // The dialog starts on the harmless answer; Revoke is a Shift+Tab away.
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(dialog.getByRole("button", { name: "Revoke" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(dialog).toHaveCount(0);
  await expect(page.getByRole("row").filter({ hasText: name }).getByText("revoked")).toBeVisible();
  await expect(page.getByRole("heading", { level: 1, name: "API keys" })).toBeFocused();
});
