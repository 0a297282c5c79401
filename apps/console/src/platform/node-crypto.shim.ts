// Stands in for node:crypto in the browser bundle. libs/protocol's study-plan module imports createHash for
// planHash(); the console never hashes a plan (the hub and the agents do), so reaching this is a bug to report.
export function createHash(algorithm: string): never {
  throw new Error(
    `node:crypto createHash(${algorithm}) is not available in the console; plan hashes come from the hub`,
  );
}
