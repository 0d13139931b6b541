import { defineConfig } from "vitest/config"

/** `npm run test:browser`: the connect page in a real browser (Debian's Chromium at /usr/bin/chromium). */
export default defineConfig({
  test: {
    include: ["test-browser/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    setupFiles: ["test/support/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The warnings a passing test provokes on purpose are noise; a failing test's are kept.
    silent: "passed-only",
    fileParallelism: false
  }
})
