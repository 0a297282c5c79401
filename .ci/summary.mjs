/* global console, process */
// Prints "N passed, N failed[, N skipped]" from a JUnit XML report's root element.
import { readFileSync } from 'node:fs';

const xml = readFileSync(process.argv[2], 'utf8');
const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? '';
const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
const tests = attr('tests');
const failed = attr('failures') + attr('errors');
const skipped = attr('skipped');
console.log(`${tests - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
