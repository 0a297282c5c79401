// @ts-check
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/** Imports that only the hub (and its tests) may make: pure libraries stay framework- and database-free. */
const serverOnly = ['@nestjs/*', 'typeorm', 'pg', 'pg-*', '@electric-sql/*', 'express', 'passport*'];

/**
 * A library is used through what its package.json exports (`@tessera/dp`, `@tessera/dp/accountant`), never through
 * its folders: a deep import reaches code the library does not promise to keep, and bypasses the export condition
 * that decides between sources and builds.
 */
const deepImports = {
  group: ['@tessera/*/src', '@tessera/*/src/**', '@tessera/*/dist', '@tessera/*/dist/**'],
  message:
    'Import the library through its package exports (e.g. @tessera/dp or @tessera/dp/accountant), not its folders.',
};

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/coverage/**',
      'test-results/**',
      'apps/console/dist/**',
      '.nx/**',
      '**/*.d.ts',
      'tmp/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { '@nx': nx },
    files: ['**/*.ts', '**/*.tsx', '**/*.mjs', '**/*.js'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // Layers, bottom up: the wire contract (canonical JSON and hashing, protocol) depends on nothing of ours;
            // domain libraries (dp, aggregation, ml, pki, audit, secagg) on the contract and each other; the apps on
            // both. docs/adr/0008-library-layers.md says why.
            { sourceTag: 'layer:contract', onlyDependOnLibsWithTags: ['layer:contract'] },
            { sourceTag: 'layer:domain', onlyDependOnLibsWithTags: ['layer:contract', 'layer:domain'] },
            { sourceTag: 'layer:app', onlyDependOnLibsWithTags: ['layer:contract', 'layer:domain'] },
            // Pure libraries: only other pure libraries, and never a framework, an ORM or a database driver.
            {
              sourceTag: 'type:pure',
              onlyDependOnLibsWithTags: ['type:pure'],
              bannedExternalImports: serverOnly,
            },
            // The hub may use any shared library, never the agent or the console.
            { sourceTag: 'scope:hub', onlyDependOnLibsWithTags: ['scope:shared'] },
            // The agent runs inside a hospital: shared libraries only, never hub code or server-only packages.
            {
              sourceTag: 'scope:agent',
              onlyDependOnLibsWithTags: ['scope:shared'],
              bannedExternalImports: serverOnly,
            },
            {
              sourceTag: 'scope:console',
              onlyDependOnLibsWithTags: ['scope:shared'],
              bannedExternalImports: serverOnly,
            },
            { sourceTag: 'scope:e2e', onlyDependOnLibsWithTags: ['scope:shared', 'scope:hub', 'scope:agent'] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
          ],
        },
      ],
    },
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
      'no-restricted-imports': ['error', { patterns: [deepImports] }],
    },
  },
  {
    // The hub's data-access layer (ADR 0020, issue 15 item 1): only repositories, entities, the database folder and
    // the audit trail's own transaction machinery reach TypeORM; services go through their folder's repository.
    // Specs and test utilities may (the integration tier keeps the real databases).
    files: ['apps/hub/src/**/*.ts'],
    ignores: [
      '**/*.repository.ts',
      '**/*.entity.ts',
      'apps/hub/src/database/**',
      'apps/hub/src/audit/ambient-transaction.util.ts',
      'apps/hub/src/audit/database-audit-trail.ts',
      'apps/hub/src/app.module.ts',
      '**/*.spec.ts',
      '**/*.int-spec.ts',
      '**/*.test-util.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepImports,
            {
              group: ['typeorm', 'typeorm/*', '@nestjs/typeorm'],
              message: "Only a folder's repository (<folder>.repository.ts) runs SQL or uses TypeORM (ADR 0020).",
            },
          ],
        },
      ],
    },
  },
  {
    // The contract layer runs in the browser too (the console): no Node built-in, in anything it ships.
    files: ['libs/canonical/src/**/*.ts', 'libs/protocol/src/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.test-util.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepImports,
            { group: ['node:*'], message: 'The contract layer runs in browsers: no Node built-ins.' },
          ],
        },
      ],
    },
  },
  {
    // Type-aware lint (issue 15, item 7): rules that need the type checker — floating promises, `async` functions
    // that never await, values of type `any` flowing on, and assertions that `noUncheckedIndexedAccess` (on in every
    // project) makes unnecessary. It reads the two programs `npm run typecheck` builds: the console's (DOM types,
    // listed first so its files get them) and tsconfig.spec.json (everything else, specs included).
    // Covered: every library (specs and test utilities included), the hub, the agent, the console, the TypeScript of
    // bench/ and tools/.
    // JavaScript (.mjs) is not in either program, so it stays on the untyped rules. `project` rather than
    // `projectService`: the service would open each library's own tsconfig.json, which leaves the specs out.
    files: [
      'libs/*/src/**/*.ts',
      'apps/hub/src/**/*.ts',
      'apps/agent/src/**/*.ts',
      'apps/console/src/**/*.ts',
      'apps/console/src/**/*.tsx',
      'apps/console/vite.config.ts',
      'bench/**/*.ts',
      'tools/**/*.ts',
    ],
    ignores: [
      // Written by openapi-typescript from docs/openapi.json (`npm run openapi`), not by hand.
      '**/*.generated.ts',
    ],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: ['./apps/console/tsconfig.json', './tsconfig.spec.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    // The preset restates the untyped recommended rules without options: keep the house options of the block above.
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
