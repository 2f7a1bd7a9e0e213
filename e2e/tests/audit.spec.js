// The audit trail and a record's history in the console.
const { test, expect, signIn, expectAccessible, unique } = require("../fixtures");
const { openPage } = require("../helpers/admin");

/** A book created, updated and deleted through the API; answers its id. */
async function bookLifecycle(server, token) {
  const made = await server.api("POST", "/api/v1/book", { token, body: { name: unique("Audited"), pages: 100 } });
  expect(made.status, JSON.stringify(made.body)).toBe(201);
  const id = made.body.data.id;
  const etag = made.headers.get("etag");
  const upd = await server.api("PATCH", `/api/v1/book/${id}`, { token, body: { pages: 250 }, headers: { "If-Match": etag } });
  expect(upd.status, JSON.stringify(upd.body)).toBe(200);
  const del = await server.api("DELETE", `/api/v1/book/${id}`, { token });
  expect([200, 204]).toContain(del.status);
  return id;
}

test("each write to a book is in the audit log, filtered by model, record and action", async ({ page, server }) => {
  const token = await server.token();
  const id = await bookLifecycle(server, token);
  await signIn(page, server);
  await openPage(page, "Audit");
  const filters = page.getByRole("search", { name: "Filter the audit trail" });
  await filters.getByLabel("Model").fill("book");
  await filters.getByLabel("Record id").fill(id);
  await filters.getByLabel("Action").fill("record.*");
  await filters.getByRole("button", { name: "Filter", exact: true }).click();

  // The filters are kept in the hash, so the view survives a reload.
  await expect(page).toHaveURL(new RegExp(`#/audit\\?.*record=${id}`));
  await page.reload();
  const entries = page.getByRole("table", { name: "Audit entries" });
  for (const action of ["record.create", "record.update", "record.delete"]) {
    await expect(entries.getByRole("row").filter({ hasText: action })).toHaveCount(1);
  }
  const update = entries.getByRole("row").filter({ hasText: "record.update" });
  await expect(update).toContainText("pages: 100 → 250");
  await expect(update.getByRole("link", { name: `book/${id}` })).toHaveAttribute("href", `#/m/book/${id}`);
  // The full changes sit behind a disclosure.
  await update.getByText("pages: 100 → 250").click();
  await expect(update.getByText('"from": 100')).toBeVisible();
  await expectAccessible(page, "audit");

  await page.getByRole("search", { name: "Filter the audit trail" }).getByLabel("Action").fill("record.update");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  // The filtered view has loaded when its heading takes the focus (counts of 0 would pass
  // on the blank page in between).
  await expect(page).toHaveURL(/action=record\.update/);
  await expect(page.getByRole("heading", { level: 1, name: "Audit" })).toBeFocused();
  await expect(entries.getByRole("row").filter({ hasText: "record.update" })).toHaveCount(1);
  await expect(entries.getByRole("row").filter({ hasText: "record.create" })).toHaveCount(0);
  await expect(entries.getByRole("row").filter({ hasText: "record.delete" })).toHaveCount(0);
});

test("flag and API key changes are audited, and the chain verifies", async ({ page, server }) => {
  const token = await server.token();
  const key = `audited-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
  expect((await server.api("POST", "/api/v1/flags", { token, body: { key } })).status).toBe(201);
  expect((await server.api("PATCH", `/api/v1/flags/${key}`, { token, body: { enabled: true } })).status).toBe(200);
  const made = await server.api("POST", "/api/v1/auth/api-keys", { token, body: { name: unique("audited key") } });
  expect(made.status).toBe(201);
  const keyId = made.body.data.id;

  await signIn(page, server);
  await page.goto(`${server.url}/admin#/audit?action=flag.*`);
  const entries = page.getByRole("table", { name: "Audit entries" });
  await expect(entries.getByRole("row").filter({ hasText: "flag.create" }).filter({ hasText: key })).toHaveCount(1);
  await expect(entries.getByRole("row").filter({ hasText: "flag.update" }).filter({ hasText: "enabled: false → true" })).not.toHaveCount(0);

  await page.goto(`${server.url}/admin#/audit?action=api_key.create&record=${keyId}`);
  await expect(entries.getByRole("row").filter({ hasText: "api_key.create" })).toHaveCount(1);
  await expect(page.getByRole("search").getByLabel("Record id")).toHaveValue(keyId);

  // The verdict shown is the server's: the check is asked for, and its count is the one shown.
  const verified = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/v1/audit/verify");
  await page.getByRole("button", { name: "Verify chain" }).click();
  const verdict = (await (await verified).json()).data;
  expect(verdict.intact).toBe(true);
  expect(verdict.entries).toBeGreaterThan(0);
  await expect(
    page.getByRole("main").getByRole("status").filter({ hasText: `Chain intact: ${verdict.entries} entries checked.` }),
  ).toBeVisible();
});

test("a record's history shows its updates, newest first, with a link back", async ({ page, server }) => {
  const token = await server.token();
  const made = await server.api("POST", "/api/v1/book", { token, body: { name: unique("Storied"), pages: 10 } });
  const id = made.body.data.id;
  let etag = made.headers.get("etag");
  for (const pages of [20, 30]) {
    const r = await server.api("PATCH", `/api/v1/book/${id}`, { token, body: { pages }, headers: { "If-Match": etag } });
    expect(r.status).toBe(200);
    etag = r.headers.get("etag");
  }
  await signIn(page, server);
  await page.goto(`${server.url}/admin#/m/book/${id}/history`);
  await expect(page.getByRole("heading", { level: 1, name: /History of book/ })).toBeVisible();
  const rows = page.getByRole("table", { name: `History of book ${id}` }).getByRole("row");
  await expect(rows).toHaveCount(4); // the header and three entries
  await expect(rows.nth(1)).toContainText("record.update");
  await expect(rows.nth(1)).toContainText("pages: 20 → 30");
  await expect(rows.nth(2)).toContainText("pages: 10 → 20");
  await expect(rows.nth(3)).toContainText("record.create");
  await expect(page.getByRole("link", { name: "Back to the record" })).toHaveAttribute("href", `#/m/book/${id}`);
  await expectAccessible(page, "history");
});

test("a user reads the history of a record they may read, not one they may not", async ({ page, server }) => {
  const owner = await server.createUser("user");
  const ownerToken = await server.token(owner.email, owner.password);
  const mine = await server.api("POST", "/api/v1/note", { token: ownerToken, body: { name: unique("Private"), body: "x" } });
  expect(mine.status).toBe(201);
  const other = await server.createUser("user");
  await signIn(page, server, other.email, other.password);
  await page.goto(`${server.url}/admin#/m/note/${mine.body.data.id}/history`);
  await expect(page.getByRole("alert")).toContainText("No such record, or you may not read it.");
  await expect(page.getByRole("table")).toHaveCount(0);
});

test("a bad filter value is refused with its reason next to the field", async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(`${server.url}/admin#/audit?actor=not-a-uuid`);
  const actor = page.getByRole("search", { name: "Filter the audit trail" }).getByLabel("Actor id");
  await expect(actor).toHaveValue("not-a-uuid");
  await expect(actor).toHaveAttribute("aria-invalid", "true");
  await expect(actor).toHaveAccessibleDescription(/must be a UUID/);
  await expect(page.getByRole("alert")).toContainText("Could not read the audit trail");
});

test("the audit log pages forward and back with its cursor", async ({ page, server }) => {
  const token = await server.token();
  const model = "book";
  for (let i = 0; i < 30; i++) {
    const r = await server.api("POST", `/api/v1/${model}`, { token, body: { name: unique("Paged"), pages: i + 1 } });
    expect(r.status).toBe(201);
  }
  await signIn(page, server);
  await page.goto(`${server.url}/admin#/audit?action=record.create&model=book`);
  const entries = page.getByRole("table", { name: "Audit entries" });
  const pager = page.getByRole("navigation", { name: "Audit pages" });
  const seqs = async () => (await entries.getByRole("row").allTextContents()).slice(1).map((t) => parseInt(t, 10));
  await expect(entries.getByRole("row")).toHaveCount(26);
  const first = await seqs();
  await expect(pager.getByRole("button", { name: "Previous" })).toBeDisabled();
  await pager.getByRole("button", { name: "Next" }).click();
  await expect(pager).toContainText("Page 2");
  const second = await seqs();
  expect(Math.max(...second)).toBeLessThan(Math.min(...first));
  await pager.getByRole("button", { name: "Previous" }).click();
  await expect(pager).toContainText("Page 1");
  expect(await seqs()).toEqual(first);

  // On a slow network a second click on Next while the first loads does not ask for a page
  // whose cursor is not known yet: page 2 is shown, labelled page 2.
  let pending = 0;
  await page.route(
    (url) => url.pathname === "/api/v1/audit",
    async (route) => {
      pending++;
      await new Promise((r) => setTimeout(r, 400));
      await route.continue();
      pending--;
    },
  );
  await pager.getByRole("button", { name: "Next" }).click();
  await pager.getByRole("button", { name: "Next" }).click();
  await expect.poll(() => pending).toBe(0);
  await expect(pager).not.toHaveAttribute("aria-busy", "true");
  await expect(pager).toContainText("Page 2");
  expect(await seqs()).toEqual(second);
});
