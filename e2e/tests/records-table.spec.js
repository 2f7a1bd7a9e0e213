// The record table: filters, sort, cursor paging kept in the address, search, a bad filter,
// live updates from the change feed, and the layout at phone width.
const crypto = require("node:crypto");
const { expect, signIn, expectAccessible, unique } = require("../fixtures");
const { test, createRecord } = require("../helpers/records");

/** The record names shown in the table, in order. */
async function shownNames(page) {
  return page.getByRole("table", { name: "book records" }).getByRole("rowheader").allTextContents();
}

test("filter, sort and page through books; reload and Back keep the page", async ({ page, server }) => {
  const token = await server.token();
  const tag = `shelf${crypto.randomBytes(4).toString("hex")}`;
  // 15 science books with distinct page counts, 10 fiction ones the filter must leave out.
  for (let i = 0; i < 25; i++) {
    const genre = i < 15 ? "science" : "fiction";
    await createRecord(server, token, "book", { name: `${tag} ${String(i).padStart(2, "0")}`, pages: 100 + i * 7, genre });
  }
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  await page.getByRole("button", { name: "Add filter" }).click();
  await page.getByLabel("Filter 1 field").selectOption("name");
  await page.getByLabel("Filter 1 operator").selectOption("like");
  await page.getByLabel("Filter 1 value").fill(`${tag}*`);
  await page.getByRole("button", { name: "Add filter" }).click();
  await expect(page.getByLabel("Filter 2 field")).toBeFocused();
  await page.getByLabel("Filter 2 field").selectOption("genre");
  await page.getByLabel("Filter 2 value").fill("science");
  await page.getByLabel("Sort by").selectOption("pages");
  await page.getByLabel("Direction").selectOption("desc");
  await page.getByLabel("Page size").selectOption("10");
  await page.getByRole("button", { name: "Apply" }).click();

  await expect(page.getByRole("main").getByText("15 records in all; 10 shown")).toBeVisible();
  const first = await shownNames(page);
  // Science books are 00..14; by pages descending: 14, 13, … 05.
  expect(first).toEqual(Array.from({ length: 10 }, (_, k) => `${tag} ${String(14 - k).padStart(2, "0")}`));
  await expect(page.getByLabel("Filter 2 value")).toHaveValue("science");

  await page.getByRole("link", { name: "Next page" }).click();
  await expect(page.getByRole("link", { name: "First page" })).toBeVisible();
  const second = await shownNames(page);
  expect(second).toEqual(["04", "03", "02", "01", "00"].map((n) => `${tag} ${n}`));
  expect(second.filter((n) => first.includes(n))).toEqual([]);
  await expect(page.getByRole("main").getByText("Last page")).toBeVisible();

  await page.reload();
  await expect(page.getByRole("rowheader").first()).toHaveText(`${tag} 04`);
  await page.goBack();
  await expect(page.getByRole("rowheader").first()).toHaveText(`${tag} 14`);
  await expect(page.getByRole("main").getByText("15 records in all; 10 shown")).toBeVisible();
  await expectAccessible(page, "record table");
});

test("search finds a book by a word of its summary", async ({ page, server }) => {
  const token = await server.token();
  const word = `quasar${crypto.randomBytes(4).toString("hex")}`;
  const name = unique("Searchable");
  await createRecord(server, token, "book", { name, pages: 5, summary: `A tale of a ${word} far away` });
  await createRecord(server, token, "book", { name: unique("Other"), pages: 5, summary: "Nothing to see" });
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  await page.getByLabel("Search").fill(word);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByRole("main").getByText("1 record in all; 1 shown")).toBeVisible();
  await expect(page.getByRole("link", { name })).toBeVisible();
  expect(await shownNames(page)).toEqual([name]);
});

test("a bad filter value shows the server's message, not a blank page", async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book?pages[gt]=abc");
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("invalid query parameters: pages[gt]");
  await expect(alert).toContainText("must be an integer");
  // The filter builder is still there to fix it.
  await expect(page.getByLabel("Filter 1 value")).toHaveValue("abc");
  await page.getByLabel("Filter 1 value").fill("5");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByRole("alert")).toHaveCount(0);
  await expect(page.getByRole("table", { name: "book records" })).toBeVisible();
});

test("the table follows creates and updates live", async ({ page, server }) => {
  const token = await server.token();
  const old = await createRecord(server, token, "book", { name: unique("Before"), pages: 40 });
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  await expect(page.getByRole("link", { name: old.name })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: /^live$/ })).toBeVisible();

  const fresh = unique("Live");
  await createRecord(server, token, "book", { name: fresh, pages: 41 });
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: fresh }) });
  await expect(row).toBeVisible();
  await expect(row).toHaveClass(/flash/);
  expect((await shownNames(page))[0]).toBe(fresh);

  const renamed = unique("Renamed");
  const r = await server.api("PATCH", `/api/v1/book/${old.id}`, { token, body: { name: renamed, pages: 4321 } });
  expect(r.status).toBe(200);
  const changed = page.getByRole("row").filter({ has: page.getByRole("link", { name: renamed }) });
  await expect(changed).toContainText("4321");
  await expect(page.getByRole("link", { name: old.name })).toHaveCount(0);

  // A delete takes the row out of the default list.
  await server.api("DELETE", `/api/v1/book/${old.id}`, { token });
  await expect(changed).toHaveCount(0);
});

test("a change made in another tab's console arrives live in this one", async ({ page, browser, server }) => {
  const token = await server.token();
  const book = await createRecord(server, token, "book", { name: unique("Shared"), pages: 50 });
  await signIn(page, server);
  await page.goto(server.url + "/admin#/m/book");
  await expect(page.getByRole("status").filter({ hasText: /^live$/ })).toBeVisible();

  // The other tab: its own browser context, its own sign-in, the record's form.
  const other = await browser.newContext();
  const tab = await other.newPage();
  await signIn(tab, server);
  await tab.goto(server.url + `/admin#/m/book/${book.id}`);
  await expect(tab.getByLabel("pages", { exact: true })).toHaveValue("50");
  await tab.getByLabel("pages", { exact: true }).fill("777");
  await tab.getByRole("button", { name: "Save" }).click();
  await expect(tab.getByLabel("pages", { exact: true })).toHaveValue("777");

  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: book.name }) });
  await expect(row).toContainText("777");
  await expect(row).toHaveClass(/flash/);

  // A new record made in the other tab shows at the top here.
  const fresh = unique("From the other tab");
  await tab.goto(server.url + "/admin#/m/book/new");
  await tab.getByLabel("name", { exact: true }).fill(fresh);
  await tab.getByLabel("pages", { exact: true }).fill("12");
  await tab.getByRole("button", { name: "Create" }).click();
  await expect(tab.getByRole("heading", { name: `book: ${fresh}` })).toBeVisible();
  await expect(page.getByRole("link", { name: fresh })).toBeVisible();
  await other.close();
});

test("a dropped change feed resumes where it stopped, missing nothing", async ({ page, server }) => {
  const token = await server.token();
  // Keep the page's EventSources within reach, to drop one as a network would.
  await page.addInitScript(() => {
    const Real = window.EventSource;
    window.__sources = [];
    window.EventSource = class extends Real {
      constructor(...args) {
        super(...args);
        window.__sources.push(this);
      }
    };
  });
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  const badge = page.getByRole("status").filter({ hasText: /^(live|reconnecting|connecting)$/ });
  await expect(badge).toHaveText("live");
  await page.evaluate(() => window.__sources[window.__sources.length - 1].dispatchEvent(new Event("error")));
  await expect(badge).toHaveText("reconnecting");
  // A book created while the stream is down comes on the resumed one (`after=`).
  const name = unique("While away");
  await createRecord(server, token, "book", { name, pages: 12 });
  await expect(badge).toHaveText("live");
  await expect(page.getByRole("link", { name })).toBeVisible();
  // The dropped stream was closed, not left open beside the new one.
  expect(await page.evaluate(() => window.__sources.map((s) => s.readyState))).toEqual([2, 1]);
  // Leaving the table closes its stream.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Models" }).click();
  await expect(page.getByRole("heading", { name: "Models", level: 1 })).toBeVisible();
  expect(await page.evaluate(() => window.__sources.map((s) => s.readyState))).toEqual([2, 2]);
});

test("the record table is usable at phone width", async ({ page, server }) => {
  const token = await server.token();
  const rec = await createRecord(server, token, "book", { name: unique("Phone"), pages: 9, summary: "A long summary ".repeat(10) });
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book");
  await expect(page.getByRole("link", { name: rec.name })).toBeVisible();
  // The page itself does not scroll sideways; the table does, inside its frame.
  const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: window.innerWidth }));
  expect(widths.doc).toBeLessThanOrEqual(widths.view);
  await expect(page.getByRole("button", { name: "Apply" })).toBeInViewport();
  // Sort and filters are folded away, so the records show on the first screen.
  await expect(page.getByLabel("Sort by")).toBeHidden();
  await expect(page.getByRole("link", { name: rec.name })).toBeInViewport();
  const more = page.getByText("Sort and filters", { exact: true });
  await more.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByLabel("Sort by")).toBeVisible();
  await expectAccessible(page, "record table at 390px");
  await page.getByRole("link", { name: rec.name }).click();
  await expect(page.getByLabel("pages", { exact: true })).toHaveValue("9");
  await expectAccessible(page, "record page at 390px");
});
