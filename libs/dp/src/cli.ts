#!/usr/bin/env node
// Entry point of the `tessera-dp` bin; all logic lives in dp-cli.ts so it is testable without a process.
import { runDpCli } from './dp-cli';

const result = runDpCli(process.argv.slice(2));
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
process.exitCode = result.exitCode;
