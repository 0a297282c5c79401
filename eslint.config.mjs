// @ts-check
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/** Imports that only the hub (and its tests) may make: pure libraries stay framework- and database-free. */
const serverOnly = ['@nestjs/*', 'typeorm', 'pg', 'pg-*', '@electric-sql/*', 'express', 'passport*'];

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
