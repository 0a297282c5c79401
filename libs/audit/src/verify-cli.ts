#!/usr/bin/env node
// Entry point of the `tessera-verify` bin: all logic is in runVerifyCli so it can be tested without a process.
import { runVerifyCli } from './verify-command';

const { stdout, stderr, exitCode } = runVerifyCli(process.argv.slice(2));
process.stdout.write(stdout);
process.stderr.write(stderr);
process.exitCode = exitCode;
