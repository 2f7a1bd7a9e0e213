// The test fixtures: a real `plinth serve` per worker (SQLite by default; PostgreSQL when
// PLINTH_TEST_ENGINE=postgres, in a database of its own, dropped afterwards), an API client
// for arranging data outside the browser, and helpers to sign in and scan a page with axe.
const { test: base, expect } = require("@playwright/test");
const { AxeBuilder } = require("@axe-core/playwright");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const crypto = require("node:crypto");

const ROOT = path.resolve(__dirname, "..");
const ADMIN = { email: "admin@example.com", password: "correct horse battery staple" };

function binary() {
  const bin = process.env.PLINTH_BIN || path.join(ROOT, "target", "debug", "plinth");
  if (!fs.existsSync(bin)) throw new Error(`no plinth binary at ${bin}: run \`cargo build -p plinth\` first`);
  return bin;
}

function postgresBase() {
  return process.env.PLINTH_TEST_POSTGRES || "postgres://postgres@127.0.0.1:5432";
}

function psql(sql) {
  execFileSync("psql", ["-q", "-v", "ON_ERROR_STOP=1", `${postgresBase()}/postgres`, "-c", sql], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** A running server; `stop()` ends it and removes what it made. */
async function startServer(label) {
  const id = `${label}-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
  const dir = path.join(ROOT, "target", "e2e", "servers", id);
  fs.mkdirSync(dir, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PLINTH_CONFIG: path.join(__dirname, "plinth.toml"),
    PLINTH_ADMIN_EMAIL: ADMIN.email,
    PLINTH_ADMIN_PASSWORD: ADMIN.password,
    LOG_LEVEL: "info",
    // Alerts judged over a short window, so the alerts page has something to show.
    PLINTH_ALERTS_WINDOW_SECONDS: "10",
    PLINTH_ALERTS_INTERVAL_SECONDS: "1",
    PLINTH_ALERTS_MIN_REQUESTS: "1",
    PLINTH_ALERTS_P99_MS: "1",
    // Every test of a worker signs in from 127.0.0.1: the default 20 logins per address and
    // minute would refuse the later ones (the per-account limits stay on).
    PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ADDRESS: "1000",
  };
  let database = null;
  if (process.env.PLINTH_TEST_ENGINE === "postgres") {
    database = `plinth_e2e_${id.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
    psql(`CREATE DATABASE ${database}`);
    env.DATABASE_URL = `${postgresBase()}/${database}`;
  }
  const child = spawn(binary(), ["serve", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data")], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = fs.createWriteStream(path.join(dir, "server.log"));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`plinth did not start; see ${dir}/server.log`)), 30_000);
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        log.write(line + "\n");
        if (!line.includes('"listening"')) return;
        try {
          const entry = JSON.parse(line);
          clearTimeout(timer);
          resolve(`http://${entry.fields.addr}`);
        } catch (_) {
          // not the line we wait for
        }
      });
    }
    child.on("exit", (code) => reject(new Error(`plinth exited (${code}); see ${dir}/server.log`)));
  });
  const server = {
    url,
    admin: ADMIN,
    /** An API call outside the browser: {status, body, headers}. */
    async api(method, apiPath, { body, token, headers = {}, form } = {}) {
      const h = { ...headers };
      if (token) h.Authorization = `Bearer ${token}`;
      let payload;
      if (form) payload = form;
      else if (body !== undefined) {
        h["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
      const res = await fetch(url + apiPath, { method, headers: h, body: payload });
      const text = await res.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch (_) {
        json = text;
      }
      return { status: res.status, body: json, headers: res.headers };
    },
    /** Signs in through the API and answers the access token. */
    async token(email = ADMIN.email, password = ADMIN.password) {
      const r = await server.api("POST", "/api/v1/auth/login", { body: { email, password } });
      if (r.status !== 200) throw new Error(`login failed: ${JSON.stringify(r.body)}`);
      return r.body.data.access_token;
    },
    /** Creates an account (as the admin) and answers {id, email, password}. */
    async createUser(role = "user") {
      const email = `${role}-${crypto.randomBytes(5).toString("hex")}@example.com`;
      const password = `pass-${crypto.randomBytes(8).toString("hex")}`;
      const r = await server.api("POST", "/api/v1/users", {
        token: await server.token(),
        body: { email, password, role },
      });
      if (r.status !== 201) throw new Error(`create user failed: ${JSON.stringify(r.body)}`);
      return { id: r.body.data.id, email, password, role };
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          resolve();
        }, 10_000);
        child.on("exit", () => {
          clearTimeout(t);
          resolve();
        });
      });
      log.end();
      if (database) psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

const test = base.extend({
  /**
   * Every test's `page` fails the test, once it has run, when the console reported a
   * Content-Security-Policy violation or a script threw: an inline style or a stray
   * `setAttribute("style")` breaks the console only under the server's CSP, which nothing
   * else in a test would notice.
   */
  page: async ({ page }, use) => {
    const problems = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
    await use(page);
    expect(problems, "CSP violations or uncaught errors in the page").toEqual([]);
  },
  server: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use, workerInfo) => {
      const server = await startServer(`w${workerInfo.workerIndex}`);
      await use(server);
      await server.stop();
    },
    { scope: "worker" },
  ],
});

/** Opens the console and signs in through its form; waits for the main menu. */
async function signIn(page, server, email = ADMIN.email, password = ADMIN.password) {
  await page.goto(server.url + "/admin");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
}

/** Runs axe-core on the page as it is; fails on any serious or critical violation. */
async function expectAccessible(page, label) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`);
  expect(report, `accessibility violations on ${label}`).toEqual([]);
}

/** A name no other test uses. */
function unique(prefix) {
  return `${prefix} ${crypto.randomBytes(4).toString("hex")}`;
}

module.exports = { test, expect, signIn, expectAccessible, unique, ADMIN };
