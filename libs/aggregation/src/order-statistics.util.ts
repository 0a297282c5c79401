/** Median of a list of numbers (mean of the two middle values for an even count); NaN for an empty list. */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const h = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[h]! : (sorted[h - 1]! + sorted[h]!) / 2;
}

/**
 * Median absolute deviation from the median, times 1.4826 = 1/Φ⁻¹(3/4): for normally distributed values it
 * estimates the standard deviation, and fewer than half of the values, however extreme, cannot inflate it
 * (Hampel 1974; Rousseeuw & Croux 1993, "Alternatives to the Median Absolute Deviation", §1).
 */
export function scaledMedianAbsoluteDeviation(values: readonly number[], median = medianOf(values)): number {
  return 1.4826 * medianOf(values.map((v) => Math.abs(v - median)));
}
