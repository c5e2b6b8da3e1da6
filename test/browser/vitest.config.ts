import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The browser tests (`npm run test:browser`): chromium against one real `devart start`. Kept out of
 * `npm test` (the root config excludes test/browser), so `.ci/run` runs them once, after both suites.
 */
export default defineConfig({
  test: {
    name: 'browser',
    root: join(import.meta.dirname, '../..'),
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['./test/browser/global-setup.ts'],
    // One server, one browser at a time: two cores also run the server, its agents and PGlite.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Waits are on conditions (expect.poll), generous for a loaded machine, never fixed sleeps.
    expect: { poll: { timeout: 20_000, interval: 100 } },
  },
});
