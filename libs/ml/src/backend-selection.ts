import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

/** tfjs backends the agent may run on, fastest first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

const ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** Optional native and wasm backends are loaded lazily so that importing this library never fails or picks one. */
const loadOptional = createRequire(__filename);

/** The package that registers each backend with tfjs-core when required (cpu ships with @tensorflow/tfjs). */
const BACKEND_PACKAGE: Readonly<Record<BackendName, string | null>> = {
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: null,
};

function registerBackend(name: BackendName): boolean {
  const pkg = BACKEND_PACKAGE[name];
  if (pkg === null) return true;
  if (tf.findBackendFactory(name) !== null) return true;
  try {
    loadOptional(pkg);
  } catch (error: unknown) {
    // The native binding is optional (only the Docker image ships it): a missing module means "not available".
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND') return false;
    throw error;
  }
  return tf.findBackendFactory(name) !== null;
}

let selection: Promise<BackendName> | null = null;
let selectionPreference: BackendName | undefined;

/**
 * Chooses the fastest available tfjs backend and initialises it once per process: 'tensorflow' when
 * `@tensorflow/tfjs-node` can be required, else 'wasm', else 'cpu'. A preference is tried first.
 * Resolves to the backend actually in use (the agent reports it with its metrics).
 */
export function selectBackend(preference?: BackendName): Promise<BackendName> {
  if (selection === null || preference !== selectionPreference) {
    selectionPreference = preference;
    selection = initialise(preference);
  }
  return selection;
}

async function initialise(preference: BackendName | undefined): Promise<BackendName> {
  const candidates = preference === undefined ? ORDER : [preference, ...ORDER.filter((name) => name !== preference)];
  for (const name of candidates) {
    if (!registerBackend(name)) continue;
    if (await tf.setBackend(name)) {
      await tf.ready();
      return name;
    }
  }
  throw new Error('no tfjs backend could be initialised');
}

/** Makes sure some backend is initialised (the default choice) unless the caller already selected one. */
export async function ensureBackend(): Promise<BackendName> {
  if (selection !== null) return selection;
  return selectBackend();
}
