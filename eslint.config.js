// @ts-check
/**
 * ESLint 9 with typescript-eslint's type-checked rules (`npm run lint`, run by `npm test`; editors
 * pick this file up at the root). recommendedTypeChecked as it is, with the few changes below,
 * each with its reason: they make the rules agree with how this code is written, not silence it.
 */
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'build/', 'native/', 'prebuilds/', 'ui/', 'deploy/', 'scripts/', 'eslint.config.js', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The code writes `xs[i]!` where the index is known to be in range, so each such read states
      // it (and reads right under noUncheckedIndexedAccess). Without that compiler flag this rule
      // calls every one of them (350 in src/) unnecessary and its fix would strip them.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Sources, outputs and fastify routes implement contracts that return a Promise (Source.start,
      // stop, close, async handlers); many have nothing to wait for, and `async` keeps a throw a
      // rejection as the contract expects.
      '@typescript-eslint/require-await': 'off',
      // Values from JSON a client or a file sent (unknown) are put into messages and keys with
      // String(): an object shown as '[object Object]' there is the intended, harmless rendering.
      '@typescript-eslint/no-base-to-string': 'off',
      // `_name` marks a parameter or destructured value that is there for its position.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Tests and benchmarks read JSON from the processes, files and servers they run
      // (JSON.parse: any) and assert on it; the assertion is the check, a type for every reply
      // would only repeat it. src/ keeps these rules.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
