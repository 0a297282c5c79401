/* global process, console, performance -- Node globals: the repository ESLint config declares none for .mjs files. */
// Measures the two accumulator designs the brief allows, to decide by measurement:
//   (a) Float64Array sum, one multiply-add per parameter (8m bytes of state);
//   (b) Float32Array sum with a Float32Array Kahan compensation term (also 8m bytes of state).
// Speed: median ms per add over m parameters. Accuracy: max abs error of the mean against an exact-ish reference
// (Float64 pairwise over the same data, which for these sizes is exact to ~1e-15 relative).
// Run: node bench/aggregation/accumulator-choice.mjs [m] [n]
const m = Number(process.argv[2] ?? 10_000_000);
const n = Number(process.argv[3] ?? 16);

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}
const sources = [];
for (let k = 0; k < 4; k += 1) {
  const r = lcg(k + 1);
  const u = new Float32Array(m);
  for (let i = 0; i < m; i += 1) u[i] = r() * (1 + k * 1e-3);
  sources.push(u);
}
const weights = Array.from({ length: n }, (_, k) => 100 + ((k * 37) % 900));

function addF64(acc, u, w) {
  for (let i = 0; i < acc.length; i += 1) acc[i] += w * u[i];
}
function addKahan(sum, comp, u, w) {
  for (let i = 0; i < sum.length; i += 1) {
    const y = Math.fround(Math.fround(w * u[i]) - comp[i]);
    const s = sum[i];
    const t = Math.fround(s + y);
    comp[i] = Math.fround(Math.fround(t - s) - y);
    sum[i] = t;
  }
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
const tF64 = [];
const tK = [];
const acc = new Float64Array(m);
const sum = new Float32Array(m);
const comp = new Float32Array(m);
for (let k = 0; k < n; k += 1) {
  const u = sources[k % 4];
  let t0 = performance.now();
  addF64(acc, u, weights[k]);
  tF64.push(performance.now() - t0);
  t0 = performance.now();
  addKahan(sum, comp, u, weights[k]);
  tK.push(performance.now() - t0);
}
const W = weights.reduce((a, b) => a + b, 0);
// Reference: Float64 sums in exact order are already the (a) result; compare both against a long-double-free
// reference built per parameter with Neumaier summation in float64.
let errF64 = 0;
let errK = 0;
for (let i = 0; i < m; i += 97) {
  let s = 0;
  let c = 0;
  for (let k = 0; k < n; k += 1) {
    const x = weights[k] * sources[k % 4][i];
    const t = s + x;
    c += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    s = t;
  }
  const ref = (s + c) / W;
  errF64 = Math.max(errF64, Math.abs(Math.fround(acc[i] / W) - ref));
  errK = Math.max(errK, Math.abs(Math.fround(sum[i] / W) - ref));
}
console.log(
  JSON.stringify({
    m,
    n,
    float64: { msPerAddMedian: median(tF64.slice(2)), maxAbsErrOfFloat32Result: errF64 },
    kahanFloat32: { msPerAddMedian: median(tK.slice(2)), maxAbsErrOfFloat32Result: errK },
  }),
);
