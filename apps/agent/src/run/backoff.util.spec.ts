import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.util';

describe('Backoff', () => {
  it('doubles from 1 s up to a 30 s cap and starts over after a reset', () => {
    const b = new Backoff();
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it('stays at the cap however many failures there were', () => {
    const b = new Backoff();
    for (let i = 0; i < 200; i++) b.next();
    expect(b.next()).toBe(30000);
  });
});
