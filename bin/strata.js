#!/usr/bin/env node
// The `strata` command (package.json "bin"): a thin launcher for the compiled CLI in dist/cli/cli.js.
'use strict';

const { main } = require('../dist/cli/cli.js');

main(process.argv.slice(2)).then((code) => {
  // exitCode, not exit(): stdout may still be draining into a pipe.
  process.exitCode = code;
});
