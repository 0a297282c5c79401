import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = join(__dirname, '../dist');

describe("the hub's footprint at start", () => {
  it('loads neither TensorFlow.js nor PDFKit until a model is exported or a report is written', () => {
    // The built hub's module graph, loaded as `npm run hub` loads it, in a process of its own.
    const loaded = execFileSync(
      process.execPath,
      [
        '-e',
        `require(${JSON.stringify(join(DIST, 'hub.js'))});` +
          'process.stdout.write(JSON.stringify(Object.keys(require.cache)))',
      ],
      { encoding: 'utf8' },
    );
    const modules = JSON.parse(loaded) as string[];
    // Sanity: the hub's own modules are there (the check sees the graph), the heavy libraries are not.
    expect(modules.some((m) => m.endsWith(join('dist', 'rounds', 'round-closer.service.js')))).toBe(true);
    expect(modules.filter((m) => /node_modules[\\/](@tensorflow|pdfkit|fontkit)[\\/]/.test(m))).toEqual([]);
  });
});
