import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { GaussianNoiseWorker, NOISE_WORKER_MIN_LENGTH, noiseWorkerScript } from './gaussian-noise-worker';
import { noiseLattice } from './gaussian-noise';
import { latticeNoisePlan } from './lattice-noise';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

// The worker runs the built script (libs/dp/dist/noise-worker.js): the integration project builds before it starts.

describe('GaussianNoiseWorker (a real worker thread)', () => {
  const worker = new GaussianNoiseWorker();
  afterAll(() => worker.close());

  it('draws exact lattice noise of the requested scale on the thread', async () => {
    const stddev = 1.1;
    const n = 200_000;
    const noise = await worker.draw(n, stddev);
    expect(noise).toBeInstanceOf(Float64Array);
    expect(noise).toHaveLength(n);
    const { granularity, effectiveStddev } = noiseLattice(stddev);
    let sum = 0;
    let sumSquares = 0;
    for (const x of noise) {
      expect(Number.isInteger(x / granularity)).toBe(true);
      sum += x;
      sumSquares += x * x;
    }
    expect(Math.abs(sum / n)).toBeLessThan((5 * stddev) / Math.sqrt(n));
    expect(Math.abs(sumSquares / n - effectiveStddev ** 2)).toBeLessThan(5 * stddev ** 2 * Math.sqrt(2 / n));
  });

  it('draws integer discrete-Gaussian noise N_Z(0, s²) for latticeNoise, on the thread and in place', async () => {
    const s = latticeNoisePlan({ clipNorm: 1, noiseMultiplier: 1.1, dimension: 200_000 }).latticeSigma;
    for (const n of [200_000, NOISE_WORKER_MIN_LENGTH - 1]) {
      const integers = await worker.drawIntegers(n, s);
      expect(integers).toBeInstanceOf(Float64Array);
      expect(integers).toHaveLength(n);
      let sum = 0;
      let sumSquares = 0;
      for (const z of integers) {
        if (!Number.isInteger(z)) throw new Error(`not an integer: ${z}`);
        sum += z;
        sumSquares += z * z;
      }
      // Mean 0 and variance s² within 5 standard errors (the discrete Gaussian's variance is s² to 1 part in e^-(2π²s²)).
      expect(Math.abs(sum / n)).toBeLessThan((5 * s) / Math.sqrt(n));
      expect(Math.abs(sumSquares / n / s ** 2 - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    }
    await expect(worker.drawIntegers(100_000, 2.5)).rejects.toMatchObject({
      code: PrivacyParameterErrorCode.InvalidStddev,
    });
    await expect(worker.drawIntegers(100_000, 2 ** 32)).rejects.toBeInstanceOf(PrivacyParameterError);
    await expect(worker.drawIntegers(-1, 16)).rejects.toBeInstanceOf(PrivacyParameterError);
  });

  it('answers concurrent requests each with its own fresh noise', async () => {
    const [a, b, c] = await Promise.all([worker.draw(20_000, 1), worker.draw(30_000, 2), worker.draw(20_000, 1)]);
    expect(a).toHaveLength(20_000);
    expect(b).toHaveLength(30_000);
    expect(c).toHaveLength(20_000);
    expect(a).not.toEqual(c);
    const rms = (v: Float64Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(rms(b) / rms(a)).toBeGreaterThan(1.9);
    expect(rms(b) / rms(a)).toBeLessThan(2.1);
  });

  it('draws short requests on the calling thread, with the same distribution', async () => {
    const short = await worker.draw(NOISE_WORKER_MIN_LENGTH - 1, 0.5);
    expect(short).toHaveLength(NOISE_WORKER_MIN_LENGTH - 1);
    expect(await worker.draw(0, 0.5)).toHaveLength(0);
  });

  it('rejects bad parameters with the library error, and stays usable', async () => {
    await expect(worker.draw(100_000, 0)).rejects.toMatchObject({ code: PrivacyParameterErrorCode.InvalidStddev });
    await expect(worker.draw(-1, 1)).rejects.toBeInstanceOf(PrivacyParameterError);
    await expect(worker.draw(100_000, 1, { granularityBits: 40 })).rejects.toMatchObject({
      code: PrivacyParameterErrorCode.InvalidOption,
    });
    expect(await worker.draw(10_000, 1)).toHaveLength(10_000);
  });

  it('rejects waiting and later requests once closed', async () => {
    const own = new GaussianNoiseWorker();
    const outcome = own.draw(500_000, 1).then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    await own.close();
    expect(await outcome).toMatch(/closed/);
    await expect(own.draw(100_000, 1)).rejects.toThrow(/closed/);
  });

  it.each([
    ['never used', ''],
    ['after a draw in place (short request)', "w.draw(14, 1).then((n) => console.log('drew', n.length));"],
    ['after a draw on the thread', "w.draw(50000, 1).then((n) => console.log('drew', n.length));"],
  ])('does not keep a process alive once nothing waits for noise: %s', (_, use) => {
    // The demo's agents exit after their study: a worker that stayed referenced would hang them forever.
    const script = [
      `const { GaussianNoiseWorker } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))});`,
      'const w = new GaussianNoiseWorker();',
      use,
    ].join('\n');
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe(use === '' ? '' : use.includes('14') ? 'drew 14' : 'drew 50000');
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('replaces a thread that died: its requests reject, the next one gets a new thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-noise-'));
    try {
      // A thread script that dies on its first request, once; later threads are the real one.
      const marker = join(dir, 'crashed');
      const script = join(dir, 'crash-once.js');
      writeFileSync(
        script,
        [
          "const fs = require('node:fs');",
          `if (!fs.existsSync(${JSON.stringify(marker)})) {`,
          `  fs.writeFileSync(${JSON.stringify(marker)}, '');`,
          "  require('node:worker_threads').parentPort.once('message', () => process.exit(3));",
          `} else require(${JSON.stringify(noiseWorkerScript())});`,
        ].join('\n'),
      );
      const flaky = new GaussianNoiseWorker(script);
      await expect(flaky.draw(20_000, 1)).rejects.toThrow(/exited \(code 3\)/);
      const noise = await flaky.draw(20_000, 1);
      expect(noise).toHaveLength(20_000);
      expect(noise.some((x) => x !== 0)).toBe(true);
      await flaky.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects, rather than hangs, when its thread cannot even start', async () => {
    const broken = new GaussianNoiseWorker(join(tmpdir(), 'tessera-no-such-noise-worker.js'));
    await expect(broken.draw(20_000, 1)).rejects.toThrow(/Cannot find module|exited/);
    await broken.close();
  });

  it('finds its script in the build', () => {
    expect(noiseWorkerScript()).toMatch(/dist[/\\]noise-worker\.js$/);
  });
});
