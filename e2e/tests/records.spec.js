// The models page and the record form: counts, server-side validation shown at each field,
// an edit that meets somebody else's change, soft delete, restore, purge, and a user's view.
const { expect, signIn, expectAccessible, unique } = require("../fixtures");
const { test, createRecord } = require("../helpers/records");

/** The count cell of `model`'s row on the models page. */
function countOf(page, model) {
  return page
    .getByRole("row")
    .filter({ has: page.getByRole("rowheader", { name: model, exact: true }) })
    .getByRole("cell")
    .first();
}

test("the models page lists book and note with their record counts", async ({ page, server }) => {
  const token = await server.token();
  const before = (await server.api("GET", "/api/v1/book?limit=1&count=true", { token })).body.page.total;
  await signIn(page, server);
  await expect(page.getByRole("heading", { name: "Models", level: 1 })).toBeVisible();
  await expect(page.getByRole("rowheader", { name: "note", exact: true })).toBeVisible();
  await expect(countOf(page, "book")).toHaveText(String(before));
  await createRecord(server, token, "book", { name: unique("count"), pages: 10 });
  await createRecord(server, token, "book", { name: unique("count"), pages: 11 });
  await page.reload();
  await expect(countOf(page, "book")).toHaveText(String(before + 2));
  await expectAccessible(page, "models page");
  await page.getByRole("link", { name: "book", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Records of book" })).toBeVisible();
});

test("a server-side validation error shows at its field and goes once fixed", async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book/new");
  const name = unique("Dune");
  await page.getByLabel("name", { exact: true }).fill(name);
  await page.getByLabel("pages", { exact: true }).fill("0");
  await page.getByLabel("isbn", { exact: true }).fill("abc");
  await page.getByRole("button", { name: "Create" }).click();
  const pages = page.getByLabel("pages", { exact: true });
  await expect(pages).toHaveAttribute("aria-invalid", "true");
  await expect(pages).toHaveAccessibleDescription(/must be between 1 and 5000/);
  await expect(page.getByLabel("isbn", { exact: true })).toHaveAccessibleDescription(/does not match the required pattern/);
  await expect(pages).toBeFocused();
  await expectAccessible(page, "new record form with errors");

  await pages.fill("412");
  await page.getByRole("button", { name: "Create" }).click();
  await expect(pages).not.toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("isbn", { exact: true })).toHaveAccessibleDescription(/does not match the required pattern/);
  await expect(page.getByRole("main").getByText("must be between 1 and 5000")).toHaveCount(0);

  await page.getByLabel("isbn", { exact: true }).fill("978-0-441-17271-9");
  await page.getByLabel("genre", { exact: true }).selectOption("fiction");
  await page.getByLabel("in_print", { exact: true }).check();
  await page.getByLabel("published", { exact: true }).fill("1965-08-01");
  await page.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("heading", { name: `book: ${name}` })).toBeVisible();
  await expect(page.getByRole("main").getByText(`Created ${name}.`)).toBeVisible();
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("412");
  await expect(page.getByLabel("isbn", { exact: true })).toHaveValue("978-0-441-17271-9");
  await expect(page.getByLabel("genre", { exact: true })).toHaveValue("fiction");
  await expect(page.getByLabel("in_print", { exact: true })).toBeChecked();
  await expect(page.getByLabel("published", { exact: true })).toHaveValue("1965-08-01");
  await expectAccessible(page, "record page");

  // What the server holds is what the form showed.
  const token = await server.token();
  const list = await server.api("GET", `/api/v1/book?name=${encodeURIComponent(name)}`, { token });
  expect(list.body.data).toHaveLength(1);
  expect(list.body.data[0]).toMatchObject({ pages: 412, genre: "fiction", in_print: true, published: "1965-08-01" });
});

test("an edit that meets another change says so, shows both values, and reloads", async ({ page, server }) => {
  const token = await server.token();
  const rec = await createRecord(server, token, "book", { name: unique("Conflict"), pages: 100 });
  await signIn(page, server);
  await page.goto(server.url + `/admin/#/m/book/${rec.id}`);
  const pages = page.getByLabel("pages", { exact: true });
  await expect(pages).toHaveValue("100");
  await pages.fill("200");
  // Somebody else changes the record meanwhile.
  const other = await server.api("PATCH", `/api/v1/book/${rec.id}`, { token, body: { pages: 300 } });
  expect(other.status).toBe(200);
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("main").getByText("This record changed since you opened it.")).toBeVisible();
  const diff = page.getByRole("table", { name: "Your values and the current ones" });
  await expect(diff.getByRole("row", { name: /pages/ })).toContainText("200");
  await expect(diff.getByRole("row", { name: /pages/ })).toContainText("300");
  // Nothing was overwritten.
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data.pages).toBe(300);

  await page.getByRole("button", { name: "Reload" }).click();
  await expect(pages).toHaveValue("300");
  await expect(page.getByRole("main").getByText("This record changed since you opened it.")).toHaveCount(0);
  await pages.fill("350");
  // The edit sends only what changed, naming the version it was made on.
  const [patch] = await Promise.all([
    page.waitForRequest((req) => req.method() === "PATCH"),
    page.getByRole("button", { name: "Save" }).click(),
  ]);
  expect(patch.postDataJSON()).toEqual({ pages: 350 });
  expect(patch.headers()["if-match"]).toBe('"2"');
  await expect(page.getByRole("main").getByText("Saved: version 3.")).toBeVisible();
  // Focus moved to the status message, so a screen reader hears the outcome.
  expect(await page.evaluate(() => document.activeElement.textContent)).toContain("Saved: version 3.");
  const now = (await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data;
  expect(now).toMatchObject({ pages: 350, version: 3 });
});

test("delete, show deleted, restore and purge", async ({ page, server }) => {
  const token = await server.token();
  const name = unique("Doomed");
  const rec = await createRecord(server, token, "book", { name, pages: 7 });
  await signIn(page, server);
  await page.goto(server.url + `/admin/#/m/book/${rec.id}`);
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("7");
  // A delete of a version that is no longer the current one is refused and explained.
  expect((await server.api("PATCH", `/api/v1/book/${rec.id}`, { token, body: { pages: 8 } })).status).toBe(200);
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("main").getByText("This record changed since you opened it.")).toBeVisible();
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data.status).toBe("active");
  await page.getByRole("button", { name: "Reload" }).click();
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("8");

  await page.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText(`Delete ${name}?`);
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("main").getByText(`Deleted ${name}.`)).toBeVisible();
  await expect(page.getByRole("main").getByText("This record is deleted: restore it to edit.")).toBeVisible();
  // The disabled form says what the record is, not the select's first choice.
  await expect(page.getByLabel("status", { exact: true })).toHaveValue("deleted");
  await expect(page.getByLabel("status", { exact: true })).toBeDisabled();
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data.status).toBe("deleted");

  // Hidden from the default list, shown with the deleted ones.
  await page.goto(server.url + `/admin/#/m/book?name=${encodeURIComponent(name)}`);
  await expect(page.getByRole("main").getByText("No records match.")).toBeVisible();
  await page.getByLabel("Status").selectOption("deleted");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.getByRole("link", { name }).click();

  await page.getByRole("button", { name: "Restore" }).click();
  await expect(page.getByRole("main").getByText(`Restored ${name}.`)).toBeVisible();
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data.status).toBe("active");

  await page.getByRole("button", { name: "Purge" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Purge" }).click();
  await expect(page.getByRole("heading", { name: "Records of book" })).toBeVisible();
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).status).toBe(404);
});

test("a user creates a book, gets no restore or purge, and sees only their own notes", async ({ page, server }) => {
  const admin = await server.token();
  const user = await server.createUser("user");
  const adminNote = await createRecord(server, admin, "note", { name: unique("admin note") });
  const userNote = await createRecord(server, await server.token(user.email, user.password), "note", { name: unique("my note") });
  await signIn(page, server, user.email, user.password);

  await page.goto(server.url + "/admin/#/m/book");
  await page.getByRole("link", { name: "New record" }).click();
  const name = unique("User book");
  await page.getByLabel("name", { exact: true }).fill(name);
  await page.getByLabel("pages", { exact: true }).fill("33");
  await page.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("heading", { name: `book: ${name}` })).toBeVisible();
  await expect(page.getByRole("button", { name: "Delete" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Purge" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Restore" })).toHaveCount(0);

  await page.goto(server.url + "/admin/#/m/note");
  await expect(page.getByRole("link", { name: userNote.name })).toBeVisible();
  await expect(page.getByRole("link", { name: adminNote.name })).toHaveCount(0);
});

test("keyboard only: search with Enter, open a record, cancel a delete with Escape", async ({ page, server }) => {
  const token = await server.token();
  const word = `kbd${Date.now().toString(36)}`;
  const rec = await createRecord(server, token, "book", { name: unique("Keys"), pages: 8, summary: `about ${word}` });
  // Another book, newer, that the search must leave out.
  await createRecord(server, token, "book", { name: unique("Unkeyed"), pages: 9, summary: "about nothing" });
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  await page.getByLabel("Search").focus();
  await page.keyboard.type(word);
  await page.keyboard.press("Enter");
  const link = page.getByRole("link", { name: rec.name });
  await expect(link).toBeVisible();
  await expect(page.getByRole("main").getByText("1 record in all; 1 shown")).toBeVisible();
  // After the navigation focus is on the page's heading, so Tab starts from the content.
  await expect(page.getByRole("heading", { name: "Records of book" })).toBeFocused();
  await link.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: `book: ${rec.name}` })).toBeFocused();

  const del = page.getByRole("button", { name: "Delete" });
  await del.focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  // Focus starts on the harmless answer; the destructive one is a Shift+Tab away.
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(dialog.getByRole("button", { name: "Delete" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(dialog).toHaveCount(0);
  await expect(del).toBeFocused();
  expect((await server.api("GET", `/api/v1/book/${rec.id}`, { token })).body.data.status).toBe("active");
});

test("a url field links out only to http(s) addresses", async ({ page, server }) => {
  const token = await server.token();
  const rec = await createRecord(server, token, "book", { name: unique("Linked"), pages: 3, website: "https://example.com/dune?x=1" });
  await signIn(page, server);
  await page.goto(server.url + `/admin/#/m/book/${rec.id}`);
  const link = page.getByRole("link", { name: "Open website in a new tab" });
  await expect(link).toHaveAttribute("href", "https://example.com/dune?x=1");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer");
  // The console's own guard, beside the server's check of url fields: nothing but http(s)
  // becomes an address, whatever the case or the spaces around the scheme.
  const hrefs = await page.evaluate(async () => {
    const { safeHref } = await import("/admin/js/ui.js");
    return ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "vbscript:x", "/admin", "//evil.example/", "http://ok.example/"].map(safeHref);
  });
  expect(hrefs).toEqual([null, null, null, null, null, null, "http://ok.example/"]);
});

test("a malformed record address is a Not found page, not a stuck one", async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book/%E0%A4%A");
  await expect(page.getByRole("heading", { name: "Not found", level: 1 })).toBeFocused();
  await page.getByRole("link", { name: "Back to the models" }).click();
  await expect(page.getByRole("heading", { name: "Models", level: 1 })).toBeVisible();
});
