import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { AGENT_IMAGE, dockerComposeFile, dockerRunCommand } from './agent-install.js';

const ROOT = join(__dirname, '../../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/**
 * The one source of truth for the agent image is the deployment: the Helm chart's agent values name the repository
 * and the chart's appVersion the release tag (the chart's tessera.image helper joins the two), and Compose builds the
 * same repository from deploy/agent.Dockerfile.
 */
function deployedAgentImage(): { repository: string; tag: string } {
  const values = parseYaml(read('deploy/helm/agent-values.yaml')) as { image: { repository: string; tag: string } };
  const chart = parseYaml(read('deploy/helm/tessera/Chart.yaml')) as { appVersion: string };
  return { repository: values.image.repository, tag: values.image.tag || chart.appVersion };
}

describe('the agent image the console and the silo guide name', () => {
  const deployed = deployedAgentImage();

  it("is the Helm chart's agent image, repository and release tag", () => {
    expect(AGENT_IMAGE).toBe(`${deployed.repository}:${deployed.tag}`);
  });

  it('is the repository docker-compose.yml builds for its agents', () => {
    const compose = parseYaml(read('docker-compose.yml')) as Record<string, { image?: string }>;
    const repository = compose['x-agent']?.image?.split(':')[0];
    expect(repository).toBe(deployed.repository);
  });

  it('is the image of the docker run and compose lines the console shows', () => {
    const o = { bundleText: 'b', hostDataDir: '/srv/data', dataFile: 'x.csv' };
    expect(dockerRunCommand(o).split('\n').at(-1)?.trim()).toBe(AGENT_IMAGE);
    expect(dockerComposeFile(o)).toContain(`    image: ${AGENT_IMAGE}\n`);
  });

  it("is the image of the silo guide's install line, and the guide names no other repository", () => {
    const guide = read('docs/silo-guide.md');
    const install = /```bash\n(docker run -d --name tessera-agent[\s\S]*?)```/.exec(guide)?.[1];
    expect(install?.trim().split('\n').at(-1)?.trim()).toBe(AGENT_IMAGE);
    // Every image reference (repository:tag) in the guide is the deployed repository.
    const refs = [...guide.matchAll(/\b([a-z0-9][a-z0-9./-]*agent):(\d+\.\d+\.\d+)\b/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    expect(new Set(refs)).toEqual(new Set([deployed.repository]));
    expect(guide).not.toContain('tessera/agent');
  });
});
