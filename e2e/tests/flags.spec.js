// Feature flags in the console: create, switch on, roll out to 50 %, errors next to fields.
const { test, expect, signIn, expectAccessible } = require("../fixtures");
const { openPage, confirmDialog } = require("../helpers/admin");

const flagKey = (prefix) => `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;

test("an admin creates a flag, switches it on and rolls it out to 50 %", async ({ page, server }) => {
  const key = flagKey("checkout");
  await signIn(page, server);
  await openPage(page, "Flags");
  const form = page.getByRole("form", { name: "Create a flag" });

  // A bad key is refused by the server, its reason next to the field.
  await form.getByLabel("Key").fill("Not A Key");
  await form.getByRole("button", { name: "Create flag" }).click();
  await expect(form.getByLabel("Key")).toHaveAttribute("aria-invalid", "true");
  await expect(form.getByLabel("Key")).toHaveAccessibleDescription(/lowercase letters/);

  await form.getByLabel("Key").fill(key);
  await form.getByLabel("Description").fill("The new checkout");
  await form.getByRole("button", { name: "Create flag" }).click();
  const row = page.getByRole("row").filter({ hasText: key });
  await expect(row).toBeVisible();
  await expect(row.getByLabel(`Enabled ${key}`)).not.toBeChecked();

  await row.getByLabel(`Enabled ${key}`).check();
  await expect(page.getByRole("main").getByText(`${key}: enabled.`)).toBeVisible();
  await expect(row.getByLabel(`Enabled ${key}`)).toBeChecked();

  await row.getByLabel(`Rollout % of ${key}`).fill("150");
  await row.getByRole("button", { name: `Save rollout of ${key}` }).click();
  await expect(row.getByLabel(`Rollout % of ${key}`)).toHaveAttribute("aria-invalid", "true");
  await expect(row.getByLabel(`Rollout % of ${key}`)).toHaveAccessibleDescription(/percentage from 0 to 100/);

  await row.getByLabel(`Rollout % of ${key}`).fill("50");
  await row.getByRole("button", { name: `Save rollout of ${key}` }).click();
  await expect(page.getByRole("main").getByText(`${key}: rollout 50 %.`)).toBeVisible();
  await expectAccessible(page, "flags");

  const r = await server.api("GET", `/api/v1/flags/${key}`, { token: await server.token() });
  expect(r.status).toBe(200);
  expect(r.body.data.enabled).toBe(true);
  expect(r.body.data.rollout).toBe(50);
});

test("a flag changed elsewhere is not overwritten; delete asks first", async ({ page, server }) => {
  const token = await server.token();
  const key = flagKey("stale");
  const body = { key, rollout: 10, allow: ["role:admin"], on_from: new Date(Date.now() + 86_400_000).toISOString() };
  expect((await server.api("POST", "/api/v1/flags", { token, body })).status).toBe(201);
  await signIn(page, server);
  await openPage(page, "Flags");
  const row = page.getByRole("row").filter({ hasText: key });
  await expect(row.getByLabel(`Rollout % of ${key}`)).toHaveValue("10");
  await expect(row).toContainText("1 allowed / 0 denied");
  await expect(row).toContainText("on at");

  expect((await server.api("PATCH", `/api/v1/flags/${key}`, { token, body: { rollout: 20 } })).status).toBe(200);
  await row.getByLabel(`Rollout % of ${key}`).fill("90");
  await row.getByRole("button", { name: `Save rollout of ${key}` }).click();
  await expect(page.getByRole("alert")).toContainText(`${key} was changed since you opened it`);
  await expect(row.getByLabel(`Rollout % of ${key}`)).toHaveValue("20");
  expect((await server.api("GET", `/api/v1/flags/${key}`, { token })).body.data.rollout).toBe(20);

  await row.getByRole("button", { name: `Delete ${key}` }).click();
  await confirmDialog(page, "Delete");
  await expect(page.getByRole("main").getByText(`${key} was deleted.`)).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: key })).toHaveCount(0);
  expect((await server.api("GET", `/api/v1/flags/${key}`, { token })).status).toBe(404);
});

test("a flag the page could not read is not changed blind", async ({ page, server }) => {
  const token = await server.token();
  const key = flagKey("unread");
  expect((await server.api("POST", "/api/v1/flags", { token, body: { key, rollout: 10 } })).status).toBe(201);
  // The flag's own GET (its ETag) fails, as under a rate limit; the list still answers.
  await page.route(
    (url) => url.pathname === `/api/v1/flags/${key}`,
    (route) =>
      route.request().method() === "GET"
        ? route.fulfill({ status: 429, json: { success: false, error: { code: "RATE_LIMITED", message: "slow down", request_id: "x" } } })
        : route.continue(),
  );
  await signIn(page, server);
  await openPage(page, "Flags");
  const row = page.getByRole("row").filter({ hasText: key });
  await row.getByLabel(`Rollout % of ${key}`).fill("30");
  await row.getByRole("button", { name: `Save rollout of ${key}` }).click();
  await expect(page.getByRole("alert")).toContainText(`${key} could not be read just now, so nothing was changed`);
  await row.getByLabel(`Enabled ${key}`).check();
  await expect(page.getByRole("alert")).toContainText(`${key} could not be read just now`);
  const now = (await server.api("GET", `/api/v1/flags/${key}`, { token })).body.data;
  expect(now.rollout).toBe(10);
  expect(now.enabled).toBe(false);
});
