// Entry point of the thread behind GaussianNoiseWorker (gaussian-noise-worker.ts): answers each request with fresh
// exact discrete-Gaussian noise (lattice values or plain integers) from this thread's own CSPRNG source, transferring
// the buffer (no copy). Not imported by the library's index: Node runs this file as a worker_threads script.

import { isMainThread, parentPort } from 'node:worker_threads';

import { gaussianNoise } from './gaussian-noise';
import { latticeIntegers } from './lattice-noise';
import type { NoiseReply, NoiseRequest } from './noise-worker.protocol';

if (isMainThread || parentPort === null) throw new Error('noise-worker.js runs only as a worker thread');
const port = parentPort;

port.on('message', (request: NoiseRequest) => {
  let reply: NoiseReply;
  try {
    const noise =
      request.kind === 'integers'
        ? latticeIntegers(request.length, request.latticeSigma)
        : gaussianNoise(
            request.length,
            request.stddev,
            request.granularityBits === undefined ? {} : { granularityBits: request.granularityBits },
          );
    reply = { id: request.id, noise };
    port.postMessage(reply, [noise.buffer as ArrayBuffer]);
  } catch (error) {
    const e = error as { code?: unknown; parameter?: unknown; message?: unknown };
    reply = {
      id: request.id,
      error: {
        message: typeof e.message === 'string' ? e.message : String(error),
        ...(typeof e.code === 'string' ? { code: e.code } : {}),
        ...(typeof e.parameter === 'string' ? { parameter: e.parameter } : {}),
      },
    };
    port.postMessage(reply);
  }
});
