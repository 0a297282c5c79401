import Ajv from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { expect } from 'vitest';
import { agentCliText, hubConfigText } from './agent-cli.test-util';
import { envOf, parseDockerfile, stagesOf } from './dockerfile-rules.test-util';
import { ChartRenderer, renderChart } from './go-template.test-util';
import { kindValidators } from './k8s-schemas.test-util';

/**
 * deploy/helm/tessera loaded once for the chart specs: its templates (as Helm would read them), values, values
 * schema, and helpers that render it with the minimal renderer and check what every rendering must hold.
 */

export const REPO = resolve(__dirname, '../..');
const CHART = join(REPO, 'deploy/helm/tessera');

export type Obj = Record<string, unknown>;
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Obj;
  data?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
export interface Container {
  name: string;
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: Obj;
  livenessProbe?: Obj;
  startupProbe?: Obj;
  args?: string[];
  securityContext?: Obj;
}
export interface PodSpec {
  containers: Container[];
  volumes?: ({ name: string } & Obj)[];
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  topologySpreadConstraints?: Obj[];
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over;
  if (typeof over !== 'object' || over === null || Array.isArray(over)) return over;
  const out: Obj = { ...(base as Obj) };
  for (const [k, v] of Object.entries(over as Obj)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

// Files .helmignore names are not part of the chart (Helm skips them too).
const helmIgnored = new Set(
  readFileSync(join(CHART, '.helmignore'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('templates/')),
);
export const templates = Object.fromEntries(
  readdirSync(join(CHART, 'templates'))
    .filter((f) => !helmIgnored.has(`templates/${f}`))
    .map((f) => [f, readFileSync(join(CHART, 'templates', f), 'utf8')]),
);
const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
export const chartMeta = { Name: chart.name!, Version: chart.version!, AppVersion: chart.appVersion! };
export const defaults = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;
export const agentValues = deepMerge(
  defaults,
  parseYaml(readFileSync(join(REPO, 'deploy/helm/agent-values.yaml'), 'utf8')),
) as Obj;

/** values.schema.json as Helm applies it before rendering (draft-07). */
export const validateValues = new Ajv({ allErrors: true, strict: false }).compile(
  JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as object,
);

const validators = kindValidators();
const RELEASE = { release: 'tessera', namespace: 'tessera', chart: chartMeta };

/** The manifests of one rendering, each YAML document parsed (a parse error fails the test). */
export function render(values: unknown): Manifest[] {
  const out = renderChart(templates, values, RELEASE);
  const manifests: Manifest[] = [];
  for (const [file, text] of Object.entries(out)) {
    for (const doc of parseAllDocuments(text)) {
      expect(doc.errors, `${file}: ${doc.errors.join('; ')}\n${text}`).toEqual([]);
      const m = doc.toJS() as Manifest | null;
      if (m !== null) manifests.push(m);
    }
  }
  return manifests;
}

/** NOTES.txt as `helm install` prints it. */
export function renderNotes(values: unknown): string {
  return new ChartRenderer(templates).render('NOTES.txt', {
    Values: values,
    Release: { Name: RELEASE.release, Namespace: RELEASE.namespace, Service: 'Helm' },
    Chart: chartMeta,
  });
}

function schemaErrors(m: Manifest): string[] {
  const validate = validators[m.kind];
  if (!validate) return [`no schema for kind ${m.kind}: add one before the chart renders it`];
  const label = `${m.kind} ${m.metadata?.name}`;
  return validate(m) ? [] : (validate.errors ?? []).map((e) => `${label}${e.instancePath} ${e.message}`);
}

export function podOf(m: Manifest): { labels: Record<string, string>; spec: PodSpec } {
  const t = (m.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } }).template;
  return { labels: t.metadata?.labels ?? {}, spec: t.spec };
}

export const find = (manifests: Manifest[], kind: string, suffix = ''): Manifest | undefined =>
  manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));

export const containerOf = (manifests: Manifest[]): Container =>
  podOf(find(manifests, 'Deployment')!).spec.containers[0]!;

export const envValue = (c: Container, name: string) => c.env?.find((e) => e.name === name);

const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

export const hubConfigNames = [...hubConfigText(REPO).matchAll(/name: '([A-Z0-9_]+)'/g)].map((m) => m[1]!);
/** Read by the AWS SDK's credential chain inside the hub (docs/operator-guide.md, "Deploying with S3"). */
export const AWS_SDK_NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
const entrypoint = readFileSync(join(REPO, 'deploy/agent-entrypoint.sh'), 'utf8');
const agentCli = agentCliText(REPO);
export const agentEnvNames = new Set(
  [...`${entrypoint}\n${agentCli}`.matchAll(/\b(TESSERA_[A-Z_]+)\b/g)].map((m) => m[1]!),
);
export const imageUser = (file: string) => {
  const stage = stagesOf(parseDockerfile(readFileSync(join(REPO, 'deploy', file), 'utf8'))).at(-1)!;
  const user = stage.instructions.filter((i) => i.keyword === 'USER').at(-1)!.args;
  return { uid: Number(user.split(':')[0]), env: envOf(stage) };
};

const SECRET_NAME = /PASSWORD|SECRET|PASSPHRASE|TOKEN|DATABASE_URL|BUNDLE$|ACCESS_KEY/;

/**
 * Checks that hold for any rendering: schemas, unique names, wiring between objects (Services, budgets, policies
 * and monitors select the pods they mean and only those), non-root and locked-down containers, no literal secrets.
 */
export function checkWiring(manifests: Manifest[]): void {
  expect(manifests.flatMap(schemaErrors)).toEqual([]);
  const names = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
  expect(new Set(names).size).toBe(names.length);
  const deployments = manifests.filter((m) => m.kind === 'Deployment');
  expect(deployments).toHaveLength(1);
  const deployment = deployments[0]!;
  const servingLabels = podOf(deployment).labels;
  for (const m of manifests.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
    const pod = podOf(m);
    if (m.kind === 'Deployment') {
      const selector = (m.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect(pod.labels).toMatchObject(selector);
    }
    expect(pod.spec.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.spec.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    const volumes = new Set((pod.spec.volumes ?? []).map((v) => v.name));
    const mounted = new Set<string>();
    for (const c of pod.spec.containers) {
      expect(c.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      for (const vm of c.volumeMounts ?? []) {
        expect(volumes, `${m.metadata.name}: mount ${vm.name}`).toContain(vm.name);
        mounted.add(vm.name);
      }
      const portNames = new Set((c.ports ?? []).map((p) => p.name));
      for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        const http = (p as { httpGet?: { port: string; path: string } } | undefined)?.httpGet;
        if (http) {
          expect(portNames).toContain(http.port);
          expect(['/health/ready', '/health/live']).toContain(http.path);
        }
      }
      for (const e of c.env ?? []) {
        if (SECRET_NAME.test(e.name)) expect(e.valueFrom, `${e.name} must come from a Secret`).toBeDefined();
      }
      const envNames = (c.env ?? []).map((e) => e.name);
      expect(new Set(envNames).size, `${m.metadata.name}: an environment variable set twice`).toBe(envNames.length);
    }
    expect([...volumes].filter((v) => !mounted.has(v))).toEqual([]);
    const sa = pod.spec.serviceAccountName;
    if (sa && sa !== 'default' && m.kind === 'Deployment') {
      const created = find(manifests, 'ServiceAccount');
      if (created) expect(created.metadata.name).toBe(sa);
    }
  }
  // The migration Job's pod is never taken for a hub: no Service, budget or policy selects it.
  for (const job of manifests.filter((m) => m.kind === 'Job')) {
    const labels = podOf(job).labels;
    for (const svc of manifests.filter((m) => m.kind === 'Service')) {
      expect(selects((svc.spec as { selector: Record<string, string> }).selector, labels)).toBe(false);
    }
    expect(selects(podOf(deployment).labels, labels)).toBe(false);
  }
  // Every Service selects the Deployment's pods and targets ports those pods name.
  const podPorts = podOf(deployment).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
  for (const svc of manifests.filter((m) => m.kind === 'Service')) {
    const spec = svc.spec as { selector: Record<string, string>; ports: { targetPort: string }[] };
    expect(selects(spec.selector, servingLabels), `Service ${svc.metadata.name} selects no pod`).toBe(true);
    for (const p of spec.ports) expect(podPorts).toContain(p.targetPort);
  }
  for (const kind of ['PodDisruptionBudget', 'NetworkPolicy']) {
    for (const m of manifests.filter((x) => x.kind === kind)) {
      const sel = (m.spec as { selector?: { matchLabels: Record<string, string> } }).selector?.matchLabels;
      const podSel = (m.spec as { podSelector?: { matchLabels: Record<string, string> } }).podSelector?.matchLabels;
      expect(selects((sel ?? podSel)!, servingLabels), `${kind} selects the serving pods`).toBe(true);
    }
  }
  for (const np of manifests.filter((m) => m.kind === 'NetworkPolicy')) {
    const ports = ((np.spec.ingress ?? []) as { ports?: { port: string | number }[] }[]).flatMap((r) =>
      (r.ports ?? []).map((p) => p.port),
    );
    for (const p of ports) if (typeof p === 'string') expect(podPorts).toContain(p);
  }
  // A ServiceMonitor selects exactly the console/API Service, and scrapes a port it has.
  for (const sm of manifests.filter((m) => m.kind === 'ServiceMonitor')) {
    const spec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    const matched = manifests.filter(
      (m) => m.kind === 'Service' && selects(spec.selector.matchLabels, m.metadata.labels ?? {}),
    );
    expect(matched.map((m) => m.metadata.name)).toEqual([find(manifests, 'Service', '-hub')!.metadata.name]);
    const ports = (matched[0]!.spec.ports as { name: string }[]).map((p) => p.name);
    for (const e of spec.endpoints) expect(ports).toContain(e.port);
  }
}
