import * as tf from '@tensorflow/tfjs';
import { axisGeometry, sidesOf, type AxisGeometry } from '@tessera/protocol';

/**
 * 2-D convolution for training and for DP-SGD's per-example gradient norms, in tfjs ops that are correct and fast on
 * the wasm backend (the agent's).
 *
 * Why not tf.conv2d's own gradient: the wasm backend has no Conv2DBackpropFilter kernel, and tfjs refuses gradients
 * of dilated convolutions. A dilated convolution runs as the plain convolution with the dilated kernel (zeros between
 * the taps), which has the same output. Its gradients are convolutions again, which XNNPACK runs fast:
 * - dx (stride 1): the convolution of dy with the spatially flipped kernel, channels swapped, padded by k − 1 − pad;
 *   with a stride, Conv2DBackpropInput (tf.conv2dTranspose; correct, slower on wasm);
 * - dW: the convolution of the input, batch and channels swapped ([C, H, W, B]), with dy as the kernel
 *   ([Ho, Wo, B, F]) dilated by the stride and strided by the dilation; when both exceed 1 (tfjs refuses that), the
 *   unfolded input's product Uᵀ·dy.
 * Unfolding ("im2col") is made of depthwise convolutions with one-hot kernels: wasm's Slice and StridedSlice kernels
 * copy their whole input on every call, far too slow on large tensors to build it from slices.
 */

/** Everything about one conv2d layer's geometry, resolved from the spec and its input shape. */
export interface ConvGeometry {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly padding: 'same' | 'valid';
  readonly rows: AxisGeometry;
  readonly cols: AxisGeometry;
  readonly inChannels: number;
  readonly filters: number;
}

export interface ConvAttributes {
  readonly kernel: number | readonly [number, number];
  readonly stride?: number | readonly [number, number] | undefined;
  readonly dilation?: number | readonly [number, number] | undefined;
  readonly padding?: 'same' | 'valid' | undefined;
  readonly filters: number;
}

/** The geometry of a convolution over an input of [height, width, channels] (shapes already checked by the spec). */
export function convGeometry(layer: ConvAttributes, inputShape: readonly number[]): ConvGeometry {
  const kernel = sidesOf(layer.kernel, 1);
  const stride = sidesOf(layer.stride, 1);
  const dilation = sidesOf(layer.dilation, 1);
  const padding = layer.padding ?? 'valid';
  const rows = axisGeometry(inputShape[0]!, kernel[0], stride[0], dilation[0], padding);
  const cols = axisGeometry(inputShape[1]!, kernel[1], stride[1], dilation[1], padding);
  if (rows === null || cols === null) throw new Error('the convolution window does not fit its input');
  return { kernel, stride, dilation, padding, rows, cols, inChannels: inputShape[2]!, filters: layer.filters };
}

/** Output positions of one example: P = out height × out width. */
export function positions(g: ConvGeometry): number {
  return g.rows.out * g.cols.out;
}

/** The kernel with dh − 1 (dw − 1) zero rows (columns) between its taps: [(kh − 1)dh + 1, (kw − 1)dw + 1, in, out]. */
export function dilateKernel(w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const [dh, dw] = g.dilation;
  if (dh === 1 && dw === 1) return w;
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = w.shape;
    let out: tf.Tensor4D = w;
    if (dh > 1) {
      const spaced = tf.concat([tf.reshape(out, [kh, 1, kw, cin, cout]), tf.zeros([kh, dh - 1, kw, cin, cout])], 1);
      out = tf.slice(tf.reshape(spaced, [kh * dh, kw, cin, cout]), 0, (kh - 1) * dh + 1) as tf.Tensor4D;
    }
    if (dw > 1) {
      const rows = out.shape[0];
      const spaced = tf.concat([tf.reshape(out, [rows, kw, 1, cin, cout]), tf.zeros([rows, kw, dw - 1, cin, cout])], 2);
      out = tf.slice(
        tf.reshape(spaced, [rows, kw * dw, cin, cout]),
        [0, 0, 0, 0],
        [rows, (kw - 1) * dw + 1, cin, cout],
      ) as tf.Tensor4D;
    }
    return out;
  });
}

/** Forward convolution without a recorded gradient of its own (inference, or inside the custom gradient below). */
export function convolve(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.conv2d(x, dilateKernel(w, g), [g.stride[0], g.stride[1]], g.padding);
}

/**
 * Patches of the input, [B, P, K] with P = out height × out width and K = kh·kw·in in the kernel's row-major order
 * (tap, then channel), so that example i's convolution is U_i·reshape(W, [K, F]). Each tap is a shifted copy of the
 * zero-padded input at the layer's stride: a depthwise convolution with a one-hot kernel (dilated like the layer's),
 * which XNNPACK runs fast; the taps are stacked (contiguous blocks) and transposed to the patch layout. (A single
 * depthwise convolution with kh·kw one-hot kernels per channel, or strided slices and a concatenation, are several
 * times slower on wasm.) Memory: B·P·K floats.
 */
export function unfoldPatches(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, , , channels] = x.shape;
    const taps = g.kernel[0] * g.kernel[1];
    const p = g.rows.out * g.cols.out;
    const stride: [number, number] = [g.stride[0], g.stride[1]];
    const oneHot = tf.cast(tf.oneHot(tf.range(0, taps, 1, 'int32'), taps), 'float32');
    if (channels === 1) {
      // One channel: one depthwise convolution with kh·kw outputs is already in (tap) order.
      const kernel = dilateKernel(tf.reshape<tf.Rank.R4>(oneHot, [g.kernel[0], g.kernel[1], 1, taps]), g);
      return tf.reshape(tf.depthwiseConv2d(x, kernel, stride, g.padding), [batch, p, taps]);
    }
    const shifted: tf.Tensor[] = [];
    for (let t = 0; t < taps; t++) {
      const single = tf.reshape(tf.slice(oneHot, [0, t], [taps, 1]), [g.kernel[0], g.kernel[1], 1, 1]);
      const kernel = dilateKernel(tf.tile(single, [1, 1, channels, 1]) as tf.Tensor4D, g);
      shifted.push(tf.depthwiseConv2d(x, kernel, stride, g.padding));
    }
    // [taps, B·P, C] → [B·P, taps, C]
    const byPosition = tf.transpose(tf.reshape(tf.stack(shifted), [taps, batch * p, channels]), [1, 0, 2]);
    return tf.reshape(byPosition, [batch, p, taps * channels]);
  });
}

/** Rows of a [K, F] matrix in unfoldPatches' order, as a kernel [kh, kw, in, F]. */
export function patchRowsToKernel(rows: tf.Tensor, g: ConvGeometry): tf.Tensor4D {
  return tf.reshape(rows, [g.kernel[0], g.kernel[1], g.inChannels, g.filters]);
}

/**
 * Patches by kh·kw strided slices of the padded input, [B, P, kh·kw·C] in tap-major order, padded with `padValue`
 * (max pooling pads with −∞, which a convolution cannot carry: −∞·0 is NaN). Slow on wasm for large inputs; used only
 * for overlapping max pooling.
 */
function unfoldBySlices(x: tf.Tensor4D, g: ConvGeometry, padValue: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, , , channels] = x.shape;
    const { rows, cols } = g;
    const padded = tf.pad(
      x,
      [
        [0, 0],
        [rows.padBefore, rows.padAfter],
        [cols.padBefore, cols.padAfter],
        [0, 0],
      ],
      padValue,
    );
    const taps: tf.Tensor4D[] = [];
    for (let r = 0; r < g.kernel[0]; r++) {
      for (let c = 0; c < g.kernel[1]; c++) {
        const top = r * g.dilation[0];
        const left = c * g.dilation[1];
        taps.push(
          tf.stridedSlice(
            padded,
            [0, top, left, 0],
            [batch, top + (rows.out - 1) * g.stride[0] + 1, left + (cols.out - 1) * g.stride[1] + 1, channels],
            [1, g.stride[0], g.stride[1], 1],
          ) as tf.Tensor4D,
        );
      }
    }
    const patches = taps.length === 1 ? taps[0]! : tf.concat(taps, 3);
    return tf.reshape(patches, [batch, rows.out * cols.out, g.kernel[0] * g.kernel[1] * channels]);
  });
}

/** The input padded as the layer pads it ('same': TensorFlow's split; 'valid': unchanged). */
function padAsLayer(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const { rows, cols } = g;
  if (rows.padBefore + rows.padAfter + cols.padBefore + cols.padAfter === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [rows.padBefore, rows.padAfter],
    [cols.padBefore, cols.padAfter],
    [0, 0],
  ]);
}

/** Σ over the batch and positions of patch ⊗ δ: the filter gradient [kh, kw, in, filters] for output gradient dy. */
export function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = g.kernel;
    if (g.stride.every((s) => s === 1) || g.dilation.every((d) => d === 1)) {
      // Batch and channels swapped: out[c, i, j, f] = Σ_{b, y, x} x_pad[b, y·s + i·d, x·s + j·d, c] · dy[b, y, x, f].
      const input = tf.transpose(padAsLayer(x, g), [3, 1, 2, 0]);
      const kernel = tf.transpose(dy, [1, 2, 0, 3]);
      const full = tf.conv2d(input, kernel, [g.dilation[0], g.dilation[1]], 'valid', 'NHWC', [
        g.stride[0],
        g.stride[1],
      ]);
      const exact =
        full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [-1, kh, kw, -1]);
      return tf.transpose(exact, [1, 2, 0, 3]);
    }
    const patches = unfoldPatches(x, g);
    const k = patches.shape[2];
    const rows = patches.shape[0] * patches.shape[1];
    // Explicit transpose: tfjs-wasm runs transposed matMuls far slower than transpose + matMul.
    const sum = tf.matMul(tf.transpose(tf.reshape(patches, [rows, k])), tf.reshape(dy, [rows, g.filters]));
    return patchRowsToKernel(sum, g);
  });
}

/**
 * dx of the convolution for output gradient dy. Stride 1: the convolution of dy with the flipped, channel-swapped
 * dilated kernel, padded by k_eff − 1 − pad on each side (the adjoint of a stride-1 convolution); otherwise
 * Conv2DBackpropInput.
 */
export function inputGradient(dy: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry, inputShape: number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const dilated = dilateKernel(w, g);
    const stride: [number, number] = [g.stride[0], g.stride[1]];
    const shape = inputShape as [number, number, number, number];
    if (stride[0] !== 1 || stride[1] !== 1) return tf.conv2dTranspose(dy, dilated, shape, stride, g.padding);
    const [effH, effW] = [dilated.shape[0], dilated.shape[1]];
    const flipped = tf.transpose(tf.reverse(dilated, [0, 1]), [0, 1, 3, 2]);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [effH - 1 - g.rows.padBefore, effH - 1 - g.rows.padAfter],
      [effW - 1 - g.cols.padBefore, effW - 1 - g.cols.padAfter],
      [0, 0],
    ];
    const full = tf.conv2d(dy, flipped, 1, pad);
    // A 'valid' layer whose window did not reach the last rows or columns: they get no gradient.
    const [, h, wd] = full.shape;
    if (h === shape[1] && wd === shape[2]) return full;
    return tf.pad(full, [
      [0, 0],
      [0, shape[1] - h],
      [0, shape[2] - wd],
      [0, 0],
    ]);
  });
}

/** Which gradients a convolution's backward pass must produce. */
export interface ConvGradientNeeds {
  /** False when the convolution reads the network input, whose gradient nobody uses. */
  readonly input: boolean;
  /** False under DP-SGD, which computes the (clipped) filter gradient from the per-example terms instead. */
  readonly filter: boolean;
}

/**
 * The convolution as a differentiable op with the gradients above (inputGradient, filterGradient). A gradient that
 * is not needed is returned as zeros (never read).
 */
export function differentiableConvolution(
  g: ConvGeometry,
  needs: ConvGradientNeeds,
): (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor4D;
    const w = args[1] as tf.Tensor4D;
    const save = args[2] as tf.GradSaveFunc;
    save([x, w]);
    return {
      value: convolve(x, w, g),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dx = needs.input ? inputGradient(dy as tf.Tensor4D, sw, g, sx.shape) : tf.zerosLike(sx);
        const dw = needs.filter ? filterGradient(sx, dy as tf.Tensor4D, g) : tf.zerosLike(sw);
        return [dx, dw];
      },
    };
  });
  return (x, w) => op(x, w);
}

/** How the per-example filter-gradient norms of a convolution are computed (see convFilterSquaredNorms). */
export type ConvNormMethod = 'materialise' | 'ghost';

/**
 * The cheaper way to get per-example ||U_iᵀ δ_i||²_F, by multiply-adds per example: materialising G_i = U_iᵀ δ_i costs
 * P·K·F; the ghost form over positions, Σ_{p,q} (U_i U_iᵀ)_{pq} (δ_i δ_iᵀ)_{pq}, costs P²·(K + F). Ghost wins when
 * P·(K + F) < K·F — few positions, wide layers (Bu, Mao, Xu 2022, "Scalable and Efficient Training of Large
 * Convolutional Neural Networks with Differential Privacy", mixed ghost clipping, §4).
 */
export function convNormMethod(g: ConvGeometry): ConvNormMethod {
  const p = positions(g);
  const k = g.kernel[0] * g.kernel[1] * g.inChannels;
  return p * (k + g.filters) < k * g.filters ? 'ghost' : 'materialise';
}

/** Per-example filter gradients [B, K, F] (materialised), U_iᵀ δ_i, one batched matmul. */
export function perExampleFilterGradients(patches: tf.Tensor3D, delta: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(tf.transpose(patches, [0, 2, 1]), delta);
}

/**
 * Per-example squared Frobenius norms [B] of the filter gradients U_iᵀ δ_i, by `method`. `patches` [B, P, K],
 * `delta` [B, P, F] (the loss gradient at the convolution's output, before bias and activation).
 */
export function convFilterSquaredNorms(patches: tf.Tensor3D, delta: tf.Tensor3D, method: ConvNormMethod): tf.Tensor1D {
  return tf.tidy(() => {
    if (method === 'materialise') {
      return tf.sum<tf.Tensor1D>(tf.square(perExampleFilterGradients(patches, delta)), [1, 2]);
    }
    const gramU = tf.matMul(patches, tf.transpose(patches, [0, 2, 1]));
    const gramD = tf.matMul(delta, tf.transpose(delta, [0, 2, 1]));
    return tf.sum<tf.Tensor1D>(tf.mul(gramU, gramD), [1, 2]);
  });
}

/**
 * Max pooling whose gradient is right on every backend: the wasm backend's MaxPoolGrad and MaxPoolWithArgmax kernels
 * give wrong positions for some shapes (tfjs-backend-wasm 4.22, e.g. batch 2 or 3 channels; found by this library's
 * tests). The value is tf.maxPool's; the gradient sends dy to the first maximum of each window in row-major order, as
 * TensorFlow's MaxPoolGrad does, adding where overlapping windows share a maximum. It is computed from the windows of
 * the input ([B·P, kh·kw, C], padded with −∞): argMax over the taps, a one-hot mask times dy, and the adjoint of the
 * windowing. Non-overlapping windows (stride = size, the usual case) are pure reshapes and 4-D transposes; overlapping
 * ones use strided slices and, for the adjoint, Conv2DBackpropInput with the one-hot unfolding kernel.
 */
export function maxPoolWithGradient(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const size: [number, number] = [g.kernel[0], g.kernel[1]];
  const stride: [number, number] = [g.stride[0], g.stride[1]];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    (args[1] as tf.GradSaveFunc)([input]);
    return {
      value: tf.maxPool(input, size, stride, g.padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [maxPoolGradient(saved[0] as tf.Tensor4D, dy as tf.Tensor4D, g)],
    };
  });
  return op(x);
}

function nonOverlapping(g: ConvGeometry): boolean {
  return g.stride[0] === g.kernel[0] && g.stride[1] === g.kernel[1];
}

/** dx of max pooling for output gradient dy (see maxPoolWithGradient). */
function maxPoolGradient(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, , , channels] = x.shape;
    const taps = g.kernel[0] * g.kernel[1];
    const rows = batch * g.rows.out * g.cols.out;
    const windows = nonOverlapping(g)
      ? tilesOf(x, g)
      : tf.reshape(unfoldBySlices(x, g, Number.NEGATIVE_INFINITY), [rows, taps, channels]);
    const first = tf.argMax(windows, 1);
    // oneHot gives int32: cast before any arithmetic (wasm's Conv2DBackpropInput reads an int32 filter's bits as floats).
    const oneHot = tf.cast(tf.oneHot(tf.reshape(first, [-1]), taps), 'float32');
    const mask = tf.transpose(tf.reshape(oneHot, [rows, channels, taps]), [0, 2, 1]);
    const contributions = tf.mul(mask, tf.reshape(dy, [rows, 1, channels]));
    if (nonOverlapping(g)) return untile(contributions, g, x.shape);
    const identity = tf.cast(tf.oneHot(tf.range(0, taps * channels, 1, 'int32'), taps * channels), 'float32');
    const unfolding = tf.reshape<tf.Rank.R4>(identity, [g.kernel[0], g.kernel[1], channels, taps * channels]);
    return tf.conv2dTranspose(
      tf.reshape<tf.Rank.R4>(contributions, [batch, g.rows.out, g.cols.out, taps * channels]),
      unfolding,
      x.shape,
      [g.stride[0], g.stride[1]],
      g.padding,
    );
  });
}

/** Windows of a non-overlapping pool, [B·P, kh·kw, C] (taps row-major), by padding or cropping and two reshapes. */
function tilesOf(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor3D {
  const [batch, height, width, channels] = x.shape;
  const [kh, kw] = g.kernel;
  const { rows, cols } = g;
  const tileRows = rows.out * kh;
  const tileCols = cols.out * kw;
  const padAfterRows = Math.max(0, tileRows - height - rows.padBefore);
  const padAfterCols = Math.max(0, tileCols - width - cols.padBefore);
  const padded =
    rows.padBefore + padAfterRows + cols.padBefore + padAfterCols === 0
      ? x
      : tf.pad(
          x,
          [
            [0, 0],
            [rows.padBefore, padAfterRows],
            [cols.padBefore, padAfterCols],
            [0, 0],
          ],
          Number.NEGATIVE_INFINITY,
        );
  const exact = padded.shape[1] === tileRows && padded.shape[2] === tileCols;
  const cropped = exact ? padded : tf.slice(padded, [0, 0, 0, 0], [batch, tileRows, tileCols, channels]);
  // [B·Ho, kh, Wo, kw·C] → [B·Ho, Wo, kh, kw·C] → one row per window.
  const swapped = tf.transpose(tf.reshape(cropped, [batch * rows.out, kh, cols.out, kw * channels]), [0, 2, 1, 3]);
  return tf.reshape(swapped, [batch * rows.out * cols.out, kh * kw, channels]);
}

/** The adjoint of tilesOf: window rows back to their pixels, padding removed, cropped pixels zero. */
function untile(windows: tf.Tensor, g: ConvGeometry, shape: [number, number, number, number]): tf.Tensor4D {
  const [batch, height, width, channels] = shape;
  const [kh, kw] = g.kernel;
  const { rows, cols } = g;
  const grid = tf.transpose(tf.reshape(windows, [batch * rows.out, cols.out, kh, kw * channels]), [0, 2, 1, 3]);
  const tiles = tf.reshape(grid, [batch, rows.out * kh, cols.out * kw, channels]);
  const keptRows = Math.min(height, rows.out * kh - rows.padBefore);
  const keptCols = Math.min(width, cols.out * kw - cols.padBefore);
  const untouched =
    rows.padBefore === 0 && cols.padBefore === 0 && keptRows === tiles.shape[1] && keptCols === tiles.shape[2];
  const inside = untouched
    ? tiles
    : tf.slice(tiles, [0, rows.padBefore, cols.padBefore, 0], [batch, keptRows, keptCols, channels]);
  if (keptRows === height && keptCols === width) return inside as tf.Tensor4D;
  return tf.pad(inside, [
    [0, 0],
    [0, height - keptRows],
    [0, width - keptCols],
    [0, 0],
  ]) as tf.Tensor4D;
}
