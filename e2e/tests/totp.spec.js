// Signing in to the console with a second factor, the code computed as an app would.
const { expect, expectAccessible } = require("../fixtures");
const { test } = require("../helpers/records");
const { totp, userWithTotp } = require("../helpers/admin");

/** A six-digit code that is none of the codes near now. */
function wrongCode(secret) {
  const valid = [-1, 0, 1, 2].map((o) => totp(secret, o));
  let wrong = "123456";
  while (valid.includes(wrong)) wrong = String((Number(wrong) + 1) % 1_000_000).padStart(6, "0");
  return wrong;
}

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

test("a wrong code is refused at the field and the next one is let in", async ({ page, server }) => {
  const user = await userWithTotp(server);
  await password(page, server, user);
  const wrong = wrongCode(user.secret);
  const code = page.getByRole("textbox", { name: "Code", exact: true });
  await code.fill(wrong);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
  // The step stays open (the server voids it only after several wrong codes): the field
  // is marked and focused for the next code, which gets in.
  await expect(code).toBeFocused();
  await expect(code).toHaveAttribute("aria-invalid", "true");
  await expectAccessible(page, "two-factor step with an error");
  await code.fill(totp(user.secret, 1));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
});

test("a spent two-factor step goes back to the password", async ({ page, server }) => {
  const user = await userWithTotp(server);
  await password(page, server, user);
  await page.getByRole("textbox", { name: "Code", exact: true }).fill(wrongCode(user.secret));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("button", { name: "Start again with the password" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Plinth" })).toBeVisible();
  await expect(page.getByLabel("Email")).toBeFocused();
});
