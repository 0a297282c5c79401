import { resolveGeneratedSecret } from '../common/generated-secret';

export const SESSION_KEY = Symbol('SESSION_KEY');

/** The key that signs session tokens: TESSERA_JWT_SECRET, or generated once into the data directory. */
export function resolveSessionKey(configured: string | undefined, dataDir: string): string {
  return resolveGeneratedSecret(configured, dataDir, 'jwt.key');
}
