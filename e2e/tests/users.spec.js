// Accounts in the console: create (with the server's field error next to the field),
// change a role, end sessions, delete.
const crypto = require("node:crypto");
const { test, expect, signIn, expectAccessible } = require("../fixtures");
const { openPage, confirmDialog } = require("../helpers/admin");

test("an admin creates an account after a bad email, then makes it an admin", async ({ page, server }) => {
  await signIn(page, server);
  await openPage(page, "Users");
  const form = page.getByRole("form", { name: "Create an account" });
  const email = `new-${crypto.randomBytes(5).toString("hex")}@example.com`;
  const password = `lantern ${crypto.randomBytes(6).toString("hex")} quartz`;

  await form.getByLabel("Email").fill("not-an-email");
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Create account" }).click();
  const emailInput = form.getByLabel("Email");
  await expect(emailInput).toHaveAttribute("aria-invalid", "true");
  await expect(emailInput).toHaveAccessibleDescription(/must be an email address/);
  await expect(emailInput).toBeFocused();
  await expectAccessible(page, "users with a field error");

  await emailInput.fill(email);
  await form.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("main").getByText(`Account ${email} created.`)).toBeVisible();
  await expect(emailInput).not.toHaveAttribute("aria-invalid", "true");

  // The list is ordered by id (UUID v7): the newest account is on the last page.
  const row = await findRow(page, email);
  await expect(row.getByText("not verified")).toBeVisible();
  await row.getByRole("combobox", { name: `Role of ${email}` }).selectOption("admin");
  await row.getByRole("button", { name: "Change role" }).click();
  await expect(page.getByRole("main").getByText(`${email} now has the role admin.`)).toBeVisible();

  const token = await server.token(email, password);
  const me = await server.api("GET", "/api/v1/auth/me", { token });
  expect(me.body.data.role).toBe("admin");
  await expectAccessible(page, "users");
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByRole("table", { name: "Accounts" })).toBeVisible();
  await expectAccessible(page, "users at phone width");
});

test("a stale role change is refused with a clear message; sessions end; delete removes the account", async ({ page, server }) => {
  const user = await server.createUser("user");
  await signIn(page, server);
  await openPage(page, "Users");
  const row = await findRow(page, user.email);

  // Someone else changes the account after the page read it: the page's If-Match is stale.
  const admin = await server.token();
  const changed = await server.api("PATCH", `/api/v1/users/${user.id}`, { token: admin, body: { password: `other ${crypto.randomBytes(6).toString("hex")} pass` } });
  expect(changed.status).toBe(200);
  await row.getByRole("combobox", { name: `Role of ${user.email}` }).selectOption("admin");
  await row.getByRole("button", { name: "Change role" }).click();
  await expect(page.getByRole("alert")).toContainText("changed since you opened this page");
  expect((await server.api("GET", `/api/v1/users/${user.id}`, { token: admin })).body.data.role).toBe("user");

  const fresh = await server.createUser("user");
  const freshToken = await server.token(fresh.email, fresh.password);
  expect((await server.api("GET", "/api/v1/auth/me", { token: freshToken })).status).toBe(200);
  await page.reload();
  const freshRow = await findRow(page, fresh.email);
  await freshRow.getByRole("button", { name: `End sessions of ${fresh.email}` }).click();
  await confirmDialog(page, "End sessions");
  await expect(page.getByRole("main").getByText(`Every session of ${fresh.email} was ended.`)).toBeVisible();
  await expect.poll(async () => (await server.api("GET", "/api/v1/auth/me", { token: freshToken })).status).toBe(401);

  const again = await findRow(page, fresh.email);
  await again.getByRole("button", { name: `Delete ${fresh.email}` }).click();
  await confirmDialog(page, "Delete");
  await expect(page.getByRole("main").getByText(`${fresh.email} was deleted.`)).toBeVisible();
  expect((await server.api("GET", `/api/v1/users/${fresh.id}`, { token: admin })).status).toBe(404);
});

/** The table row of `email`, paging forward with "Next" until it shows. */
async function findRow(page, email) {
  const list = page.getByRole("main");
  for (let i = 0; i < 50; i++) {
    await expect(list.getByRole("table", { name: "Accounts" })).toBeVisible();
    const row = list.getByRole("row").filter({ hasText: email });
    if (await row.count()) return row;
    const next = page.getByRole("navigation", { name: "Account pages" }).getByRole("button", { name: "Next" });
    if (await next.isDisabled()) break;
    const before = await page.getByRole("navigation", { name: "Account pages" }).textContent();
    await next.click();
    await expect(page.getByRole("navigation", { name: "Account pages" })).not.toHaveText(before);
  }
  throw new Error(`no row for ${email}`);
}
