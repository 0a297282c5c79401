#!/usr/bin/env node
'use strict';
// Launcher committed with the sources so npm links the `tessera-dp` command at install time, before anything is built
// (npm links a workspace's bin only if its file exists then). It runs the built program, or says how to build it:
// it never lets `npx tessera-dp` fall through to the public registry.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const program = join(__dirname, '..', 'dist/cli.js');
if (!existsSync(program)) {
  process.stderr.write(
    'tessera-dp: this checkout is not built yet; run `npm run build` at the root of the Tessera checkout, then try again.\n',
  );
  process.exit(2);
}
require(program);
