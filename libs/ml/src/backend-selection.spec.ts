import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';

function resolvable(name: string): boolean {
  try {
    createRequire(__filename).resolve(name);
    return true;
  } catch {
    return false;
  }
}

describe('selectBackend', () => {
  it('picks tensorflow when tfjs-node is installed, else wasm, and reports the backend in use', async () => {
    const chosen = await selectBackend();
    expect(chosen).toBe(resolvable('@tensorflow/tfjs-node') ? 'tensorflow' : 'wasm');
    expect(tf.getBackend()).toBe(chosen);
    expect(tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]).toBe(5);
  });

  it('honours a preference and can switch to cpu', async () => {
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });
});
