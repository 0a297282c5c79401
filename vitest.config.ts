import react from '@vitejs/plugin-react';
import swc from 'unplugin-swc';
import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Tests read the libraries' TypeScript sources, never their builds: every library's package.json exports its
 * sources under the "@tessera/source" condition (dist under "default", for Node and tsc -b). One mechanism for the
 * whole workspace: vitest and vite here, `customConditions` in tsconfig.spec.json and the console's tsconfig.
 */
const SOURCE_CONDITION = '@tessera/source';
const resolveSources = {
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  // Node never honours the "module" condition; resolving with it loads builds Node would not (the AWS SDK's dist-es,
  // whose extensionless imports only a bundler resolves).
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions.filter((c) => c !== 'module')] } },
};

// SWC, not esbuild: NestJS dependency injection needs emitted decorator metadata.
const plugins = [swc.vite({ module: { type: 'es6' }, jsc: { target: 'es2022' } })];

export default defineConfig({
  plugins,
  ...resolveSources,
  test: {
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'test-results/junit.xml' },
    projects: [
      {
        plugins,
        ...resolveSources,
        test: {
          name: 'unit',
          // Some unit tests run built code (the DP noise worker thread, benchmark scripts): build first (incremental).
          globalSetup: ['./vitest.global-setup.ts'],
          include: [
            'libs/*/src/**/*.spec.ts',
            'apps/*/src/**/*.spec.ts',
            'bench/**/*.spec.ts',
            'deploy/checks/**/*.spec.ts',
            'tools/**/*.spec.ts',
          ],
          environment: 'node',
          // A guard against a hung test, not a speed check (speed lives in bench/): statistical specs drawing 10^5
          // samples take seconds on two loaded cores, past vitest's 5 s default.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        plugins,
        ...resolveSources,
        test: {
          name: 'integration',
          globalSetup: ['./vitest.global-setup.ts'],
          include: [
            'apps/*/src/**/*.int-spec.ts',
            'libs/*/src/**/*.int-spec.ts',
            'apps/hub-e2e/**/*.e2e-spec.ts',
            'deploy/checks/**/*.int-spec.ts',
          ],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Integration suites start real servers, databases and agent processes: one file at a time on two cores.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        // The web console's components, in a simulated DOM.
        plugins: [react({})],
        ...resolveSources,
        test: {
          name: 'console',
          include: ['apps/console/src/**/*.spec.tsx'],
          environment: 'jsdom',
          // As the unit project's: a guard, not a speed check.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
