import { defineConfig } from 'vitest/config';

// Native addons and loop mounts: each test file in its own process (vitest's advice for
// native libraries), and the fs tier one file at a time, since its files share loop devices.
export default defineConfig({
  test: {
    pool: 'forks',
    setupFiles: ['test/helpers/runtime-dir.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // npm pack and a global install of the tarball: minutes, once, so a tier of its own.
      { extends: true, test: { name: 'package', include: ['test/package/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 900_000 } },
      { extends: true, test: { name: 'fs', include: ['test/fs/**/*.test.ts'], fileParallelism: false } },
      // Inside the lab VM (test/lab/run.sh), where everything runs about 20 times slower.
      { extends: true, test: { name: 'lab', include: ['test/lab/**/*.test.ts'], fileParallelism: false, testTimeout: 600_000, hookTimeout: 600_000 } },
    ],
  },
});
