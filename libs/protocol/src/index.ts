// @tessera/protocol: wire types and validation shared by hub, agent and console.
export * from './identity';
