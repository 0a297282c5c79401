/* global fetch, performance, setTimeout */
// A worker thread of console readers for bench/console-load: `readers` closed loops, each GETting the console's
// pages' API calls in turn with a think time, timing every answer. Runs apart from the uploading silos so the
// silos' TLS work on the bench's main thread never delays a reader's clock. Posts { latenciesMs, byPath, bytesByPath,
// errors } when told to stop.
import { parentPort, workerData } from 'node:worker_threads';

const { url, token, readers, thinkMs, paths } = workerData;
let running = true;
const latencies = [];
const byPath = Object.fromEntries(paths.map((p) => [p.name, []]));
/** Body bytes of the last answer per path (what the hub serialises and sends for each read). */
const bytesByPath = {};
const errors = [];

parentPort.on('message', (m) => {
  if (m === 'stop') running = false;
});

async function reader(index) {
  // Readers start spread over one think time so they do not march in step.
  await new Promise((r) => setTimeout(r, (index * thinkMs) / readers));
  for (let i = index; running; i += 1) {
    const p = paths[i % paths.length];
    const t0 = performance.now();
    try {
      const res = await fetch(`${url}${p.path}`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.arrayBuffer();
      bytesByPath[p.name] = body.byteLength;
      const ms = performance.now() - t0;
      if (res.status !== 200) errors.push(`${p.name}: ${res.status}`);
      else {
        latencies.push(ms);
        byPath[p.name].push(ms);
      }
    } catch (error) {
      errors.push(`${p.name}: ${error.message}`);
    }
    await new Promise((r) => setTimeout(r, thinkMs));
  }
}

await Promise.all(Array.from({ length: readers }, (_, i) => reader(i)));
parentPort.postMessage({
  latenciesMs: latencies,
  byPath,
  bytesByPath,
  errors: errors.slice(0, 20),
  errorCount: errors.length,
});
