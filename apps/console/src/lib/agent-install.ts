// The lines a hospital's IT team pastes to run the agent: the image, the one-time bundle, the data file mounted
// read-only, a volume for the agent's state (its key, certificate, ledger). No port is published: the agent only
// ever connects out to the hub.

/**
 * The agent image as the deployment files name it: the repository of deploy/helm/agent-values.yaml and
 * docker-compose.yml (built by deploy/agent.Dockerfile), tagged with the chart's appVersion (the release).
 * agent-install.spec.ts reads those files and fails when this line drifts from them.
 */
export const AGENT_IMAGE = 'tessera-agent:0.1.0';
/** Where the agent keeps its key, certificate, approvals and privacy ledger inside the container. */
export const AGENT_STATE_PATH = '/var/lib/tessera';

export interface AgentInstallOptions {
  /** The enrollment bundle, one line (base64url). */
  bundleText: string;
  /** Folder on the host that holds the data file (mounted read-only at /data). */
  hostDataDir: string;
  /** File name inside that folder. */
  dataFile: string;
  /** Container and volume name stem. */
  name?: string;
}

/** Quotes for a POSIX shell: single quotes, with any single quote closed, escaped and reopened. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function yamlQuote(value: string): string {
  return JSON.stringify(value);
}

export function dockerRunCommand(o: AgentInstallOptions): string {
  const name = o.name ?? 'tessera-agent';
  return [
    `docker run -d --name ${name} --restart unless-stopped \\`,
    `  -e TESSERA_ENROLLMENT_BUNDLE=${shellQuote(o.bundleText)} \\`,
    `  -e TESSERA_DATA_FILE=${shellQuote(`/data/${o.dataFile}`)} \\`,
    `  -v ${shellQuote(`${o.hostDataDir}:/data:ro`)} \\`,
    `  -v ${name}-state:${AGENT_STATE_PATH} \\`,
    `  ${AGENT_IMAGE}`,
  ].join('\n');
}

export function dockerComposeFile(o: AgentInstallOptions): string {
  const name = o.name ?? 'tessera-agent';
  return [
    'services:',
    `  ${name}:`,
    `    image: ${AGENT_IMAGE}`,
    '    restart: unless-stopped',
    '    environment:',
    `      TESSERA_ENROLLMENT_BUNDLE: ${yamlQuote(o.bundleText)}`,
    `      TESSERA_DATA_FILE: ${yamlQuote(`/data/${o.dataFile}`)}`,
    '    volumes:',
    `      - ${yamlQuote(`${o.hostDataDir}:/data:ro`)}`,
    `      - ${name}-state:${AGENT_STATE_PATH}`,
    'volumes:',
    `  ${name}-state: {}`,
    '',
  ].join('\n');
}
