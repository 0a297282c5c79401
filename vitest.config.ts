import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One alias per library: tests import the libraries' sources, never their builds.
const libs = ['canonical', 'protocol', 'pki', 'dp', 'aggregation', 'ml', 'audit'];
const alias = {
  '@tessera/dp/accountant': resolve(__dirname, 'libs/dp/src/accountant.ts'),
  ...Object.fromEntries(libs.map((l) => [`@tessera/${l}`, resolve(__dirname, `libs/${l}/src/index.ts`)])),
};

// SWC, not esbuild: NestJS dependency injection needs emitted decorator metadata.
const plugins = [swc.vite({ module: { type: 'es6' }, jsc: { target: 'es2022' } })];

export default defineConfig({
  plugins,
  resolve: { alias },
  test: {
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'test-results/junit.xml' },
    projects: [
      {
        plugins,
        resolve: { alias },
        test: {
          name: 'unit',
          // Some unit tests run built code (the DP noise worker thread, benchmark scripts): build first (incremental).
          globalSetup: ['./vitest.global-setup.ts'],
          include: [
            'libs/*/src/**/*.spec.ts',
            'apps/*/src/**/*.spec.ts',
            'bench/**/*.spec.ts',
            'deploy/checks/**/*.spec.ts',
          ],
          environment: 'node',
        },
      },
      {
        plugins,
        resolve: { alias },
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
        resolve: { alias },
        test: {
          name: 'console',
          include: ['apps/console/src/**/*.spec.tsx'],
          environment: 'jsdom',
        },
      },
    ],
  },
});
