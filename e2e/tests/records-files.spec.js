// Files on the record form: a PNG uploaded on create shows as a preview and a download link;
// a file of a type the field refuses shows the server's error at the field.
const { expect, signIn, unique } = require("../fixtures");
const { test, png } = require("../helpers/records");

test("upload a PNG, see its preview and download link; a text file is refused at the field", async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(server.url + "/admin/#/m/book/new");
  const name = unique("Covered");
  await page.getByLabel("name", { exact: true }).fill(name);
  await page.getByLabel("pages", { exact: true }).fill("12");
  const cover = page.getByLabel("cover", { exact: true });
  await expect(cover).toHaveAttribute("accept", "image/png,image/jpeg");
  await cover.setInputFiles({ name: "cover.png", mimeType: "image/png", buffer: png(8) });
  await page.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("heading", { name: `book: ${name}` })).toBeVisible();

  const preview = page.getByRole("img", { name: /^Preview of cover/ });
  await expect(preview).toBeVisible();
  await expect.poll(() => preview.evaluate((img) => img.naturalWidth)).toBe(8);
  const download = page.getByRole("link", { name: /^Download cover/ });
  await expect(download).toHaveAttribute("href", /^blob:/);
  const [file] = await Promise.all([page.waitForEvent("download"), download.click()]);
  expect(file.suggestedFilename()).toMatch(/^cover.*\.png$/);

  // The server, not the browser, judges the type: a text file is refused at the field.
  await page.getByLabel("cover", { exact: true }).setInputFiles({ name: "notes.png", mimeType: "image/png", buffer: Buffer.from("just some text") });
  await page.getByRole("button", { name: "Save" }).click();
  const field = page.getByLabel("cover", { exact: true });
  await expect(field).toHaveAttribute("aria-invalid", "true");
  await expect(field).toHaveAccessibleDescription(/text\/plain.*not one of image\/png, image\/jpeg/);
  // The stored cover is still the PNG.
  await expect.poll(() => preview.evaluate((img) => img.naturalWidth)).toBe(8);
});
