import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/**
 * The layers of src/, top to bottom, and what each may import besides its own folder. An import goes
 * sideways inside a folder or down, never up; the faces (cli, http, xmpp, web) never import each other;
 * storage and the document format (xep0227) are siblings that never import each other. The entry
 * points src/cli.ts and src/serve.ts sit above every layer, may import anything, and nothing imports them.
 */
const BASE = ['lib', 'config', 'records', 'xml'];
const MAY_IMPORT = {
  lib: [],
  config: ['lib'],
  records: ['lib', 'xml'],
  xml: ['lib', 'records'],
  storage: BASE,
  xep0227: BASE,
  transfer: ['storage', 'xep0227', ...BASE],
  core: ['transfer', 'storage', 'xep0227', ...BASE],
  cli: ['core', 'transfer', 'storage', 'xep0227', ...BASE],
  http: ['core', 'transfer', 'storage', 'xep0227', ...BASE],
  xmpp: ['core', 'transfer', 'storage', 'xep0227', ...BASE],
  web: ['core', 'transfer', 'storage', 'xep0227', ...BASE],
};
const LAYERS = Object.keys(MAY_IMPORT);
const ENTRY_POINTS = ['src/cli.ts', 'src/serve.ts'];
const layerZones = LAYERS.map((layer) => ({
  target: `src/${layer}`,
  from: [...LAYERS.filter((other) => other !== layer && !MAY_IMPORT[layer].includes(other)).map((other) => `src/${other}`), ...ENTRY_POINTS],
  message: `src/${layer}/ may import only ${MAY_IMPORT[layer].map((l) => `${l}/`).join(', ') || 'its own folder'} (see the layers in eslint.config.js).`,
}));

/**
 * Inside storage/: the neutral SQL engine (sql/) knows no server's tables, and each backend folder
 * stands alone; only prosody-sql/ and prosody-files/ share Prosody's value formats in prosody/.
 */
const BACKENDS = ['prosody', 'prosody-sql', 'prosody-files', 'ejabberd-sql', 'xmpp-client'];
const STORAGE_MAY_IMPORT = {
  sql: [],
  prosody: [],
  'prosody-sql': ['sql', 'prosody'],
  'prosody-files': ['prosody'],
  'ejabberd-sql': ['sql'],
  'xmpp-client': [],
};
const storageZones = Object.entries(STORAGE_MAY_IMPORT).map(([folder, allowed]) => ({
  target: `src/storage/${folder}`,
  from: ['sql', ...BACKENDS].filter((other) => other !== folder && !allowed.includes(other)).map((other) => `src/storage/${other}`),
  message: `src/storage/${folder}/ may import only ${['storage/ (its interface and shared modules)', ...allowed.map((a) => `storage/${a}/`)].join(', ')}.`,
}));


export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.build.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { zones: [...layerZones, ...storageZones] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
