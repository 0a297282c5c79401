// Entry point of the thread that trains the digits demo's pooled baseline (started by startPooledDigitsBaseline in
// demo-digits.ts): the same pooledDigitsBaseline the demo would run on its own thread, on a copy of the plan and the
// splits, so its ~60 CPU-seconds overlap the studies instead of following them. Answers once: the result, or the
// message of the error that stopped it.
import { parentPort, workerData } from 'node:worker_threads';
import { pooledDigitsBaseline, type PooledDigitsWorkerData, type PooledDigitsWorkerMessage } from './demo-digits';

const port = parentPort;
if (port === null) throw new Error('demo-pooled-worker.js runs as a worker thread (startPooledDigitsBaseline)');
const { plan, splits } = workerData as PooledDigitsWorkerData;
pooledDigitsBaseline(plan, splits).then(
  (baseline) => port.postMessage({ kind: 'done', baseline } satisfies PooledDigitsWorkerMessage),
  (err: unknown) =>
    port.postMessage({
      kind: 'failed',
      message: err instanceof Error ? err.message : String(err),
    } satisfies PooledDigitsWorkerMessage),
);
