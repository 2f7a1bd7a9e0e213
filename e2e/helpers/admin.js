// Helpers for the admin pages' tests: the main menu, confirming a dialog, and TOTP codes
// computed as an authenticator app would (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits).
const crypto = require("node:crypto");
const { expect } = require("@playwright/test");

/**
 * Follows a main-menu link and waits until the page has rendered: the shell focuses the
 * page's heading once the page's first load is done (typing before that could be moved).
 */
async function openPage(page, item, heading = item) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: item, exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: heading })).toBeFocused();
}

/** Answers the open confirm dialog with its button `yes`. */
async function confirmDialog(page, yes) {
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: yes, exact: true }).click();
  await expect(dialog).toHaveCount(0);
}

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The code of the time step `offset` steps from now. */
function totp(secret, offset = 0, now = Date.now()) {
  const step = Math.floor(now / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const bin = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(bin).padStart(6, "0");
}

/** Creates a user with TOTP turned on; answers {email, password, secret}. */
async function userWithTotp(server) {
  const user = await server.createUser("user");
  const token = await server.token(user.email, user.password);
  const enrol = await server.api("POST", "/api/v1/auth/mfa/totp", { token });
  expect(enrol.status, JSON.stringify(enrol.body)).toBe(200);
  const secret = enrol.body.data.secret;
  const confirm = await server.api("POST", "/api/v1/auth/mfa/totp/confirm", { token, body: { code: totp(secret) } });
  expect(confirm.status, JSON.stringify(confirm.body)).toBe(200);
  return { ...user, secret };
}

module.exports = { openPage, confirmDialog, totp, userWithTotp };
