import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  axisGeometry,
  formatNetworkShapeTable,
  inferNetworkShapes,
  logisticRegressionNetwork,
  mlpNetwork,
  NETWORK_LIMITS,
  NetworkSpecError,
  NetworkSpecErrorCode,
  parseNetworkSpec,
  smallCnnNetwork,
  smallResidualCnnNetwork,
  type NetworkSpec,
} from './network-spec';

const digits = (): NetworkSpec =>
  smallCnnNetwork({ height: 28, width: 28, channels: 1, task: { kind: 'multiclass', classes: 10 } });

/** A spec with its layers replaced, on a 12×12×3 image input and a 4-class task. */
function imageSpec(layers: unknown[], classes = 4): unknown {
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: 12, width: 12, channels: 3 },
    layers,
    task: { kind: 'multiclass', classes },
  };
}

function refusal(value: unknown): NetworkSpecError {
  try {
    inferNetworkShapes(value);
  } catch (error) {
    expect(error).toBeInstanceOf(NetworkSpecError);
    return error as NetworkSpecError;
  }
  throw new Error('the spec was accepted');
}

describe('network spec: shape inference', () => {
  it('gives the small CNN table on 28×28 digits, shapes and parameters computed by hand', () => {
    const table = inferNetworkShapes(digits());
    expect(table.rows.map((r) => [r.id, r.outputShape, r.parameters])).toEqual([
      ['conv_1', [28, 28, 16], 3 * 3 * 1 * 16 + 16],
      ['pool_1', [14, 14, 16], 0],
      ['conv_2', [14, 14, 32], 3 * 3 * 16 * 32 + 32],
      ['pool_2', [7, 7, 32], 0],
      ['flatten', [1568], 0],
      ['dense_1', [64], 1568 * 64 + 64],
      ['logits', [10], 64 * 10 + 10],
    ]);
    expect(table.parameters).toBe(105_866);
    expect(table.inputShape).toEqual([28, 28, 1]);
    expect(table.rowLength).toBe(784);
    expect(table.rows[0]!.weights).toEqual([
      { name: 'conv_1/kernel', shape: [3, 3, 1, 16] },
      { name: 'conv_1/bias', shape: [16] },
    ]);
  });

  it('takes other filter counts for the small CNN, its layers otherwise the same', () => {
    const half = inferNetworkShapes(
      smallCnnNetwork({
        height: 28,
        width: 28,
        channels: 1,
        task: { kind: 'multiclass', classes: 10 },
        filters: [8, 16],
      }),
    );
    expect(half.rows.map((r) => [r.id, r.outputShape, r.parameters])).toEqual([
      ['conv_1', [28, 28, 8], 3 * 3 * 1 * 8 + 8],
      ['pool_1', [14, 14, 8], 0],
      ['conv_2', [14, 14, 16], 3 * 3 * 8 * 16 + 16],
      ['pool_2', [7, 7, 16], 0],
      ['flatten', [784], 0],
      ['dense_1', [64], 784 * 64 + 64],
      ['logits', [10], 64 * 10 + 10],
    ]);
    expect(half.parameters).toBe(52_138);
  });

  it('gives a scattering layer c·(1 + J·L + L²·J(J−1)/2) channels at ⌊side/2^J⌋ and no parameters', () => {
    const table = inferNetworkShapes({
      ...digits(),
      layers: [
        { id: 'scatter', kind: 'scattering', scales: 2, angles: 8 },
        { id: 'norm', kind: 'groupNorm', groups: 27 },
        { id: 'flatten', kind: 'flatten' },
        { id: 'logits', kind: 'dense', units: 10 },
      ],
    });
    // J = 2, L = 8: the averaged image, 2·8 first-order and 8·8 second-order maps (Tramèr & Boneh's 81 channels).
    expect(table.rows.map((r) => [r.id, r.outputShape, r.parameters])).toEqual([
      ['scatter', [7, 7, 81], 0],
      ['norm', [7, 7, 81], 162],
      ['flatten', [3969], 0],
      ['logits', [10], 3969 * 10 + 10],
    ]);
    expect(table.rows[0]!.weights).toEqual([]);
    expect(table.parameters).toBe(162 + 39_700);
    // Three channels, three scales, four angles: 3·(1 + 12 + 16·3) = 183 channels at ⌊12/8⌋ × ⌊12/8⌋.
    const rgb = inferNetworkShapes(
      imageSpec([
        { id: 's', kind: 'scattering', scales: 3, angles: 4 },
        { id: 'f', kind: 'flatten' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
    );
    expect(rgb.rows[0]!.outputShape).toEqual([1, 1, 3 * (1 + 3 * 4 + 16 * 3)]);
  });

  it('gives the residual preset its skip connections, stride-2 downsampling and group-norm parameters', () => {
    const table = inferNetworkShapes(
      smallResidualCnnNetwork({ height: 28, width: 28, channels: 1, task: { kind: 'multiclass', classes: 10 } }),
    );
    const row = (id: string) => table.rows.find((r) => r.id === id)!;
    expect(row('block_1_add').inputs).toEqual(['stem_relu', 'block_1_b_norm']);
    expect(row('down_conv').outputShape).toEqual([14, 14, 32]);
    expect(row('down_conv').weights).toEqual([{ name: 'down_conv/kernel', shape: [3, 3, 16, 32] }]);
    expect(row('stem_norm').weights.map((w) => w.name)).toEqual(['stem_norm/gamma', 'stem_norm/beta']);
    expect(row('pool').outputShape).toEqual([32]);
    // stem 144 + 32; block 1: 2 × (2304 + 32); down 4608 + 64; block 2: 2 × (9216 + 64); logits 330.
    expect(table.parameters).toBe(28_410);
  });

  it('gives the MLP preset the registry layout: dense_i/kernel [in, out] then dense_i/bias', () => {
    const table = inferNetworkShapes(
      mlpNetwork({ features: 13, hiddenLayers: [16, 8], activation: 'relu', task: { kind: 'binary' } }),
    );
    expect(table.rows.flatMap((r) => r.weights)).toEqual([
      { name: 'dense_1/kernel', shape: [13, 16] },
      { name: 'dense_1/bias', shape: [16] },
      { name: 'dense_2/kernel', shape: [16, 8] },
      { name: 'dense_2/bias', shape: [8] },
      { name: 'dense_3/kernel', shape: [8, 1] },
      { name: 'dense_3/bias', shape: [1] },
    ]);
    expect(inferNetworkShapes(logisticRegressionNetwork(13)).parameters).toBe(14);
  });

  it('embeds categorical columns and concatenates them with the numeric features', () => {
    const table = inferNetworkShapes({
      format: 'tessera.network/1',
      input: {
        kind: 'tabular',
        features: 5,
        categorical: [
          { name: 'cp', levels: 4 },
          { name: 'thal', levels: 3 },
        ],
      },
      layers: [
        { id: 'cp_emb', kind: 'embedding', column: 'cp', dim: 2 },
        { id: 'thal_emb', kind: 'embedding', column: 'thal', dim: 3 },
        { id: 'join', kind: 'concat', inputs: ['input', 'cp_emb', 'thal_emb'] },
        { id: 'norm', kind: 'layerNorm' },
        { id: 'out', kind: 'dense', units: 1 },
      ],
      task: { kind: 'regression', loss: 'huber' },
    });
    expect(table.rowLength).toBe(7);
    expect(table.rows.map((r) => [r.id, r.outputShape, r.parameters])).toEqual([
      ['cp_emb', [2], 8],
      ['thal_emb', [3], 9],
      ['join', [10], 0],
      ['norm', [10], 20],
      ['out', [1], 11],
    ]);
    expect(table.rows[0]!.inputs).toEqual([]);
  });

  it('computes strided, dilated and pooled sides as TensorFlow does', () => {
    expect(axisGeometry(5, 3, 2, 1, 'same')).toEqual({ out: 3, padBefore: 1, padAfter: 1 });
    expect(axisGeometry(6, 3, 2, 1, 'same')).toEqual({ out: 3, padBefore: 0, padAfter: 1 });
    expect(axisGeometry(7, 3, 1, 2, 'valid')).toEqual({ out: 3, padBefore: 0, padAfter: 0 });
    expect(axisGeometry(4, 3, 1, 2, 'valid')).toBeNull();
    const table = inferNetworkShapes(
      imageSpec([
        { id: 'a', kind: 'conv2d', filters: 5, kernel: [3, 2], stride: [2, 1], dilation: [1, 3], padding: 'valid' },
        { id: 'b', kind: 'avgPool2d', size: 2, stride: 1, padding: 'same' },
        { id: 'c', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
    );
    // Rows: floor((12 − 3) / 2) + 1 = 5; columns: effective kernel (2 − 1)·3 + 1 = 4, 12 − 4 + 1 = 9.
    expect(table.rows.map((r) => r.outputShape)).toEqual([[5, 9, 5], [5, 9, 5], [5], [4]]);
    expect(table.rows[0]!.parameters).toBe(3 * 2 * 3 * 5 + 5);
  });

  it('formats the table the steward reads, one row per layer with the total', () => {
    const text = formatNetworkShapeTable(inferNetworkShapes(digits()));
    const lines = text.split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^layer\s+kind\s+inputs\s+output\s+parameters$/);
    expect(lines[3]).toMatch(/^pool_1\s+maxPool2d\s+conv_1\s+\[14, 14, 16\]\s+0$/);
    expect(lines[9]).toMatch(/^total\s+\[10\]\s+105,866$/);
  });
});

describe('network spec: refusals name the layer and the field', () => {
  const cases: [string, unknown, NetworkSpecErrorCode, string | null, string][] = [
    [
      'batch norm',
      imageSpec([
        { id: 'bn', kind: 'batchNorm' },
        { id: 'f', kind: 'flatten' },
      ]),
      NetworkSpecErrorCode.UnsupportedLayer,
      'bn',
      'kind',
    ],
    ['an unknown kind', imageSpec([{ id: 'x', kind: 'lstm' }]), NetworkSpecErrorCode.Structure, 'x', 'kind'],
    [
      'a zero kernel',
      imageSpec([{ id: 'c', kind: 'conv2d', filters: 2, kernel: 0 }]),
      NetworkSpecErrorCode.Structure,
      'c',
      'kernel',
    ],
    [
      'an input nobody gives',
      imageSpec([
        { id: 'f', kind: 'flatten', inputs: ['nope'] },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Wiring,
      'f',
      'inputs',
    ],
    [
      'an input from a later layer (a cycle)',
      imageSpec([
        { id: 'a', kind: 'activation', fn: 'relu', inputs: ['b'] },
        { id: 'b', kind: 'flatten', inputs: ['a'] },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Wiring,
      'a',
      'inputs',
    ],
    [
      'a duplicate id',
      imageSpec([
        { id: 'f', kind: 'flatten' },
        { id: 'f', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.LayerId,
      'f',
      'id',
    ],
    ['dense on an image', imageSpec([{ id: 'd', kind: 'dense', units: 4 }]), NetworkSpecErrorCode.Shape, 'd', 'inputs'],
    [
      'a kernel larger than the image without padding',
      imageSpec([
        { id: 'c', kind: 'conv2d', filters: 2, kernel: 7, dilation: 2 },
        { id: 'g', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Shape,
      'c',
      'kernel',
    ],
    [
      'groups that do not divide the channels',
      imageSpec([
        { id: 'n', kind: 'groupNorm', groups: 2 },
        { id: 'g', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Shape,
      'n',
      'groups',
    ],
    [
      'a residual add of two shapes',
      imageSpec([
        { id: 'c', kind: 'conv2d', filters: 3, kernel: 3 },
        { id: 'a', kind: 'add', inputs: ['input', 'c'] },
        { id: 'g', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Shape,
      'a',
      'inputs',
    ],
    [
      'a layer whose output nobody reads',
      imageSpec([
        { id: 'side', kind: 'conv2d', filters: 3, kernel: 3 },
        { id: 'g', kind: 'globalAvgPool2d', inputs: ['input'] },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Wiring,
      'side',
      'id',
    ],
    [
      'an output of the wrong width',
      imageSpec([
        { id: 'g', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 3 },
      ]),
      NetworkSpecErrorCode.Output,
      'd',
      'units',
    ],
    [
      'a nonlinearity on the output',
      imageSpec([
        { id: 'g', kind: 'globalAvgPool2d' },
        { id: 'd', kind: 'dense', units: 4, activation: 'sigmoid' },
      ]),
      NetworkSpecErrorCode.Output,
      'd',
      'activation',
    ],
    [
      'more than 50M parameters',
      {
        format: 'tessera.network/1',
        input: { kind: 'tabular', features: 10_000 },
        layers: [
          { id: 'wide', kind: 'dense', units: 6_000 },
          { id: 'out', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
      NetworkSpecErrorCode.Limit,
      'wide',
      'parameters',
    ],
    [
      'an activation too large for one example',
      {
        format: 'tessera.network/1',
        input: { kind: 'image', height: 1024, width: 1024, channels: 3 },
        layers: [
          { id: 'huge', kind: 'conv2d', filters: 64, kernel: 1 },
          { id: 'g', kind: 'globalAvgPool2d' },
          { id: 'd', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
      NetworkSpecErrorCode.Limit,
      'huge',
      'outputShape',
    ],
    [
      'an embedding of an undeclared column',
      {
        format: 'tessera.network/1',
        input: { kind: 'tabular', features: 2 },
        layers: [
          { id: 'e', kind: 'embedding', column: 'sex', dim: 2 },
          { id: 'j', kind: 'concat', inputs: ['input', 'e'] },
          { id: 'd', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
      NetworkSpecErrorCode.Wiring,
      'e',
      'column',
    ],
    [
      'a scattering layer after a trainable one',
      imageSpec([
        { id: 'c', kind: 'conv2d', filters: 2, kernel: 3 },
        { id: 's', kind: 'scattering', scales: 1, angles: 4 },
        { id: 'f', kind: 'flatten' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Wiring,
      's',
      'inputs',
    ],
    [
      'more scattering scales than the image has halvings',
      imageSpec([
        { id: 's', kind: 'scattering', scales: 4, angles: 4 },
        { id: 'f', kind: 'flatten' },
        { id: 'd', kind: 'dense', units: 4 },
      ]),
      NetworkSpecErrorCode.Shape,
      's',
      'scales',
    ],
    [
      'a scattering layer on a vector',
      {
        format: 'tessera.network/1',
        input: { kind: 'tabular', features: 16 },
        layers: [
          { id: 's', kind: 'scattering', scales: 1, angles: 4 },
          { id: 'd', kind: 'dense', units: 1 },
        ],
        task: { kind: 'binary' },
      },
      NetworkSpecErrorCode.Shape,
      's',
      'inputs',
    ],
    [
      'too many layers',
      imageSpec(
        Array.from({ length: NETWORK_LIMITS.layers + 1 }, (_, i) => ({ id: `a${i}`, kind: 'activation', fn: 'relu' })),
      ),
      NetworkSpecErrorCode.Structure,
      null,
      'layers',
    ],
  ];
  for (const [name, spec, code, layer, field] of cases) {
    it(`refuses ${name}`, () => {
      const error = refusal(spec);
      expect({ code: error.code, layer: error.layerId, field: error.field }).toEqual({ code, layer, field });
      expect(error.message).toContain(layer === null ? `${field}:` : `layer "${layer}", ${field}:`);
    });
  }

  it('explains why batch norm is refused', () => {
    expect(refusal(imageSpec([{ id: 'bn', kind: 'batchNormalization' }])).message).toMatch(/groupNorm or layerNorm/);
  });

  it('parses the presets unchanged (the plan hash covers exactly what was written)', () => {
    const spec = digits();
    expect(parseNetworkSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });

  it('either accepts a random convolution stack with a consistent table or refuses it with a NetworkSpecError', () => {
    const layer = fc.oneof(
      fc.record({
        kind: fc.constant('conv2d' as const),
        filters: fc.integer({ min: 1, max: 8 }),
        kernel: fc.integer({ min: 1, max: 5 }),
        stride: fc.integer({ min: 1, max: 3 }),
        dilation: fc.integer({ min: 1, max: 3 }),
        padding: fc.constantFrom('same' as const, 'valid' as const),
      }),
      fc.record({
        kind: fc.constantFrom('maxPool2d' as const, 'avgPool2d' as const),
        size: fc.integer({ min: 1, max: 4 }),
        padding: fc.constantFrom('same' as const, 'valid' as const),
      }),
    );
    fc.assert(
      fc.property(fc.array(layer, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 20 }), (stack, side) => {
        const layers = [
          ...stack.map((l, i) => ({ ...l, id: `l${i}` })),
          { id: 'f', kind: 'flatten' },
          { id: 'd', kind: 'dense', units: 1 },
        ];
        const spec = {
          format: 'tessera.network/1',
          input: { kind: 'image', height: side, width: side, channels: 1 },
          layers,
          task: { kind: 'binary' },
        };
        try {
          const table = inferNetworkShapes(spec);
          const sum = table.rows.reduce((n, r) => n + r.parameters, 0);
          expect(table.parameters).toBe(sum);
          for (const row of table.rows) expect(row.outputShape.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(NetworkSpecError);
          expect((error as NetworkSpecError).code).toBe(NetworkSpecErrorCode.Shape);
        }
      }),
      { numRuns: 200 },
    );
  });
});
