import { AggregationErrorCode, AggregationException } from './aggregation.exception';

/**
 * squaredNorm (update-validation.ts) of a vector that arrives in pieces, with the same bits: the same n % 8 head into
 * the first partial sum, the same eight-wide groups into four partial sums, the same final combination — whatever
 * the pieces' boundaries (a group split across two pieces is carried over). Lets a blockwise pass measure an
 * update's norm exactly as an aggregator holding it whole would (DP-FedAvg's clipping trace).
 */
export class StreamingSquaredNorm {
  private readonly head: number;
  private position = 0;
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private readonly carry = new Float64Array(8);
  private carried = 0;

  constructor(readonly length: number) {
    this.head = length % 8;
  }

  /** The next values of the vector, in order. */
  push(values: Float32Array): void {
    if (this.position + values.length > this.length) {
      throw new AggregationException(
        AggregationErrorCode.LengthMismatch,
        `${this.position + values.length} values pushed into the norm of a vector of ${this.length}`,
      );
    }
    const n = values.length;
    let i = 0;
    for (; i < n && this.position < this.head; i += 1, this.position += 1) {
      const x = values[i]!;
      this.a += x * x;
    }
    const afterHead = i;
    if (this.carried > 0) {
      for (; i < n && this.carried < 8; i += 1) this.carry[this.carried++] = values[i]!;
      if (this.carried === 8) {
        this.group(this.carry, 0);
        this.carried = 0;
      }
    }
    for (; i + 8 <= n; i += 8) this.group(values, i);
    for (; i < n; i += 1) this.carry[this.carried++] = values[i]!;
    this.position += n - afterHead;
  }

  /** Σ x² so far; equals squaredNorm(whole vector) once every value was pushed. */
  get value(): number {
    if (this.position !== this.length) {
      throw new AggregationException(
        AggregationErrorCode.LengthMismatch,
        `the norm of a vector of ${this.length} values was read after ${this.position}`,
      );
    }
    return this.a + this.b + (this.c + this.d);
  }

  private group(v: Float32Array | Float64Array, i: number): void {
    const x0 = v[i]!;
    const x1 = v[i + 1]!;
    const x2 = v[i + 2]!;
    const x3 = v[i + 3]!;
    const x4 = v[i + 4]!;
    const x5 = v[i + 5]!;
    const x6 = v[i + 6]!;
    const x7 = v[i + 7]!;
    this.a += x0 * x0 + x4 * x4;
    this.b += x1 * x1 + x5 * x5;
    this.c += x2 * x2 + x6 * x6;
    this.d += x3 * x3 + x7 * x7;
  }
}
