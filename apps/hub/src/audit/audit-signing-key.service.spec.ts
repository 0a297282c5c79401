import { publicKeyFingerprint } from '@tessera/audit';
import { beforeEach, describe, expect, it } from 'vitest';
import { auditServicesOver, InMemoryAudit } from './in-memory-audit.test-util';

describe('AuditSigningKeyService over its repository', () => {
  let store: InMemoryAudit;
  beforeEach(() => {
    store = new InMemoryAudit();
  });

  it('makes the key on first use, under its lock, and records its creation in the same transaction', async () => {
    const { keys } = auditServicesOver(store);
    const key = await keys.signingKey();
    expect(publicKeyFingerprint(key.privateKey)).toBe(key.keyId);
    expect(store.storedKeys.map((k) => k.keyId)).toEqual([key.keyId]);
    expect(store.storedKeys[0]!.privateKeyEncryptedPem).toContain('ENCRYPTED PRIVATE KEY');
    expect(store.chainRecords.map((r) => [r.action, r.details])).toEqual([
      ['audit.signing-key.created', { keyId: key.keyId, algorithm: 'Ed25519' }],
    ]);
    // The record joined the key's transaction: one transaction took the key lock, then the chain's.
    expect(store.lockLog).toEqual([
      { tx: 1, lock: 'signing-key' },
      { tx: 1, lock: 'chain' },
    ]);
  });

  it('keeps the first key: a later use, and a replica started later, sign with it', async () => {
    const first = await auditServicesOver(store).keys.signingKey();
    const again = await auditServicesOver(store).keys.signingKey();
    expect(again.keyId).toBe(first.keyId);
    expect(store.storedKeys).toHaveLength(1);
    expect(store.chainRecords).toHaveLength(1);
  });

  it('makes one key when two replicas need one at the same time', async () => {
    const [a, b] = await Promise.all([
      auditServicesOver(store).keys.signingKey(),
      auditServicesOver(store).keys.signingKey(),
    ]);
    expect(a.keyId).toBe(b.keyId);
    expect(store.storedKeys).toHaveLength(1);
    expect(store.chainRecords.map((r) => r.action)).toEqual(['audit.signing-key.created']);
  });

  it('lists every stored key with the current one marked, and their public keys by id', async () => {
    const { keys } = auditServicesOver(store);
    const list = await keys.keyList();
    const key = await keys.publicKey();
    expect(list).toEqual([
      { keyId: key.keyId, publicKeyPem: key.publicKeyPem, createdAt: expect.any(String) as string, current: true },
    ]);
    expect(await keys.publicKeys()).toEqual(new Map([[key.keyId, key.publicKeyPem]]));
  });

  it('refuses a stored key it cannot decrypt (the passphrase changed), and tries again on the next use', async () => {
    await auditServicesOver(store).keys.signingKey();
    const { keys } = auditServicesOver(store, 'another passphrase');
    await expect(keys.signingKey()).rejects.toThrow(
      /cannot decrypt the audit signing key .* TESSERA_CA_KEY_PASSPHRASE/,
    );
    await expect(keys.signingKey()).rejects.toThrow(/cannot decrypt/);
    expect(store.storedKeys).toHaveLength(1);
  });

  it('commits the key with the enclosing transaction, and leaves none when that one rolls back', async () => {
    await expect(
      store.run(async () => {
        await auditServicesOver(store).keys.signingKey();
        expect(store.storedKeys).toHaveLength(0); // not committed yet
        throw new Error('the enclosing change failed');
      }),
    ).rejects.toThrow('the enclosing change failed');
    expect(store.storedKeys).toHaveLength(0);
    expect(store.chainRecords).toHaveLength(0);
  });
});
