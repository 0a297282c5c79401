// @tessera/canonical: RFC 8785 canonical JSON and SHA-256, the two things a hash that two parties must agree on is
// made of (plan hashes, audit chain hashes, signed payloads). Runs in Node and in the browser; depends on no other
// Tessera library, so the wire contract (@tessera/protocol) and the audit library can both stand on it.
export * from './canonical-json';
export * from './sha256';
