// Signing in to the console with a second factor, the code computed as an app would.
const { test, expect, expectAccessible } = require("../fixtures");
const { totp, userWithTotp } = require("../helpers/admin");

async function password(page, server, user) {
  await page.goto(server.url + "/admin");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Two-factor code" })).toBeVisible();
}

test("a user with TOTP signs in with a computed code", async ({ page, server }) => {
  const user = await userWithTotp(server);
  await password(page, server, user);
  await expect(page.getByRole("textbox", { name: "Code", exact: true })).toBeFocused();
  await expectAccessible(page, "two-factor step");
  // The confirming code's step is spent; the next step is within the allowed drift.
  await page.getByRole("textbox", { name: "Code", exact: true }).fill(totp(user.secret, 1));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expect(page.getByText(`${user.email} (user)`)).toBeVisible();
});

test("a wrong code is refused with a message and no session", async ({ page, server }) => {
  const user = await userWithTotp(server);
  await password(page, server, user);
  const valid = [-1, 0, 1].map((o) => totp(user.secret, o));
  let wrong = "123456";
  while (valid.includes(wrong)) wrong = String((Number(wrong) + 1) % 1_000_000).padStart(6, "0");
  await page.getByRole("textbox", { name: "Code", exact: true }).fill(wrong);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert")).toContainText("Sign in again");
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
});
