import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface ImageStreamReport {
  benchmark: string;
  machine: MachineShape;
  batch: number;
  steps: number;
  sizes: {
    n: number;
    images: number;
    train: number;
    cached: boolean;
    steps: number;
    examplesUsed: number;
    peakRssBytes: number;
    peakHeapBytes: number;
  }[];
  targets: { peakBounded: TargetShape; growthMiB: number };
}

// Keeps the script from rotting: --smoke (500 and 2,000 generated images, 5 DP-SGD steps) and the shape of its JSON.
// Memory is measured, not asserted here (a smoke run's peak says nothing of 100,000 images).
describe('agent memory on many images (smoke)', () => {
  it('generates the images, checks and streams them as the agent does, and reports each size’s peak', () => {
    const report = runSmoke('bench/ml/image-stream.bench.mjs', [], 300_000) as ImageStreamReport;
    expect(report.benchmark).toBe('image-stream');
    expect(report.sizes.map((s) => s.n)).toEqual([500, 2000]);
    for (const s of report.sizes) {
      expect(s.images).toBe(s.n);
      expect(s.train).toBeGreaterThan(0.7 * s.n);
      expect(s.train).toBeLessThan(0.9 * s.n);
      expect(s.cached).toBe(false);
      expect(s.steps).toBe(5);
      expect(s.examplesUsed).toBeGreaterThan(0);
      expect(s.peakRssBytes).toBeGreaterThan(s.peakHeapBytes);
    }
    expect(report.targets.peakBounded.target).toBe(512);
    expect(typeof report.targets.growthMiB).toBe('number');
  }, 300_000);
});
