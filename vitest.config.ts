import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'web/test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    pool: 'forks',
    // Two cores: one file per core keeps timing-sensitive socket tests honest.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The PostgreSQL run of the suite (SILO_TEST_DATABASE_URL) reports beside the PGlite one.
    reporters: [
      'default',
      [
        'json',
        {
          outputFile: process.env.SILO_TEST_DATABASE_URL
            ? 'test-results-pg.json'
            : 'test-results.json',
        },
      ],
    ],
  },
})
