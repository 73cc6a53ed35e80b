#!/usr/bin/env node
// Reads fields from JSON for the shell scripts (jq is not on every machine; node is).
// Usage: node json.mjs FILE|- PATH [PATH...]
//   PATH is dot-separated (`primary.http`, `verdict.failovers.0.gapMs`); each value is printed on
//   its own line: strings raw, arrays of strings space-separated, other values as JSON, a missing
//   field as an empty line; the segment `@keys` gives an object's keys (`@keys` alone: the top
//   level's), `*` maps the rest of the path over an array (`*.name`). Exit 1 when the input is
//   not JSON.
import { readFileSync } from 'node:fs';

const [source, ...paths] = process.argv.slice(2);
if (!source || paths.length === 0) {
  process.stderr.write('usage: json.mjs FILE|- PATH [PATH...]\n');
  process.exit(2);
}
let document;
try {
  document = JSON.parse(readFileSync(source === '-' ? 0 : source, 'utf8'));
} catch (error) {
  process.stderr.write(`json.mjs: ${source === '-' ? 'standard input' : source} is not JSON: ${error.message}\n`);
  process.exit(1);
}
function select(value, parts) {
  if (parts.length === 0 || value === null || value === undefined) return value;
  const [part, ...rest] = parts;
  if (part === '*') return Array.isArray(value) ? value.map((item) => select(item, rest)) : undefined;
  if (part === '@keys') return select(typeof value === 'object' ? Object.keys(value) : undefined, rest);
  return select(value[part], rest);
}

for (const path of paths) {
  const value = select(document, path.split('.'));
  if (value === undefined || value === null) process.stdout.write('\n');
  else if (typeof value === 'string') process.stdout.write(`${value}\n`);
  else if (Array.isArray(value) && value.every((item) => typeof item === 'string')) process.stdout.write(`${value.join(' ')}\n`);
  else process.stdout.write(`${JSON.stringify(value)}\n`);
}
