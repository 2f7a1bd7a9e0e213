// Not a test suite: takes the console screenshots in docs/img/ for the README, against a
// real server with sample data. `npx playwright test -c screenshots.config.js`.
const base = require("./playwright.config.js");

module.exports = { ...base, testDir: "./screenshots", workers: 1, fullyParallel: false };
