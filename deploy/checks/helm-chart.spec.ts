import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { agentCliText } from './agent-cli.test-util';
import { envOf, parseDockerfile, stagesOf } from './dockerfile-rules.test-util';
import { ChartRenderer, renderChart } from './go-template.test-util';
import { kindValidators } from './k8s-schemas.test-util';

/**
 * deploy/helm/tessera rendered by the minimal renderer in go-template.test-util.ts (no `helm` here) for the hub's
 * default values, for ../agent-values.yaml, and with every optional part switched on; every manifest checked
 * against the hand-written schemas of its kind, then against what the images and the hub expect.
 */

const REPO = resolve(__dirname, '../..');
const CHART = join(REPO, 'deploy/helm/tessera');

type Obj = Record<string, unknown>;
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Obj;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: Obj }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: Obj;
  livenessProbe?: Obj;
  startupProbe?: Obj;
  args?: string[];
}
interface PodSpec {
  containers: Container[];
  volumes?: ({ name: string } & Obj)[];
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean };
}

function deepMerge(base: unknown, over: unknown): unknown {
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
const templates = Object.fromEntries(
  readdirSync(join(CHART, 'templates'))
    .filter((f) => !helmIgnored.has(`templates/${f}`))
    .map((f) => [f, readFileSync(join(CHART, 'templates', f), 'utf8')]),
);
const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
const defaults = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;
const agentValues = deepMerge(defaults, parseYaml(readFileSync(join(REPO, 'deploy/helm/agent-values.yaml'), 'utf8')));
const validators = kindValidators();

function render(values: unknown): Manifest[] {
  const out = renderChart(templates, values, {
    release: 'tessera',
    namespace: 'tessera',
    chart: { Name: chart.name!, Version: chart.version!, AppVersion: chart.appVersion! },
  });
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

function schemaErrors(m: Manifest): string[] {
  const validate = validators[m.kind];
  if (!validate) return [`no schema for kind ${m.kind}: add one before the chart renders it`];
  const label = `${m.kind} ${m.metadata?.name}`;
  return validate(m) ? [] : (validate.errors ?? []).map((e) => `${label}${e.instancePath} ${e.message}`);
}

function podOf(m: Manifest): { labels: Record<string, string>; spec: PodSpec } {
  const t = (m.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } }).template;
  return { labels: t.metadata?.labels ?? {}, spec: t.spec };
}

const hubConfigNames = [
  ...readFileSync(join(REPO, 'apps/hub/src/config/config.schema.ts'), 'utf8').matchAll(/name: '([A-Z_]+)'/g),
].map((m) => m[1]!);
const entrypoint = readFileSync(join(REPO, 'deploy/agent-entrypoint.sh'), 'utf8');
const agentCli = agentCliText(REPO);
const agentEnvNames = new Set([...`${entrypoint}\n${agentCli}`.matchAll(/\b(TESSERA_[A-Z_]+)\b/g)].map((m) => m[1]!));
const imageUser = (file: string) => {
  const stage = stagesOf(parseDockerfile(readFileSync(join(REPO, 'deploy', file), 'utf8'))).at(-1)!;
  const user = stage.instructions.filter((i) => i.keyword === 'USER').at(-1)!.args;
  return { uid: Number(user.split(':')[0]), env: envOf(stage) };
};

const SECRET_NAME = /PASSWORD|SECRET|PASSPHRASE|TOKEN|DATABASE_URL|BUNDLE$/;

/** Checks that hold for any rendering: schemas, wiring between objects, non-root, no literal secrets. */
function checkWiring(manifests: Manifest[]): void {
  expect(manifests.flatMap(schemaErrors)).toEqual([]);
  const names = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
  expect(new Set(names).size).toBe(names.length);
  for (const m of manifests.filter((x) => x.kind === 'Deployment' || x.kind === 'Job')) {
    const pod = podOf(m);
    if (m.kind === 'Deployment') {
      const selector = (m.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect(pod.labels).toMatchObject(selector);
    }
    expect(pod.spec.securityContext?.runAsNonRoot).toBe(true);
    const volumes = new Set((pod.spec.volumes ?? []).map((v) => v.name));
    const mounted = new Set<string>();
    for (const c of pod.spec.containers) {
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
    }
    expect([...volumes].filter((v) => !mounted.has(v))).toEqual([]);
  }
  // Every Service selects the pods of a Deployment and targets ports those pods name.
  const deployments = manifests.filter((m) => m.kind === 'Deployment');
  for (const svc of manifests.filter((m) => m.kind === 'Service')) {
    const spec = svc.spec as { selector: Record<string, string>; ports: { targetPort: string }[] };
    const target = deployments.find((d) => Object.entries(spec.selector).every(([k, v]) => podOf(d).labels[k] === v));
    expect(target, `Service ${svc.metadata.name} selects no Deployment`).toBeDefined();
    const ports = podOf(target!).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
    for (const p of spec.ports) expect(ports).toContain(p.targetPort);
  }
}

describe('the Helm chart deploy/helm/tessera', () => {
  it('renders the hub: Deployment with /health probes, HTTP Service, layer-4 silo Service, blob volume, migrations Job', () => {
    const manifests = render(defaults);
    checkWiring(manifests);
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'Deployment',
      'Job',
      'PersistentVolumeClaim',
      'Service',
      'Service',
    ]);
    const deployment = manifests.find((m) => m.kind === 'Deployment')!;
    expect(deployment.spec.replicas).toBe(defaults.replicaCount);
    const pod = podOf(deployment).spec;
    const hub = pod.containers[0]!;
    expect(pod.securityContext?.runAsUser).toBe(imageUser('hub.Dockerfile').uid);
    expect((hub.readinessProbe as { httpGet: { path: string } }).httpGet.path).toBe('/health/ready');
    // Liveness must not depend on the database: an outage must not restart every hub pod.
    expect((hub.livenessProbe as { httpGet: { path: string } }).httpGet.path).toBe('/health/live');
    expect(hub.ports!.map((p) => p.containerPort).sort()).toEqual([8080, 8443, 8444]);
    // The blob volume at the image's TESSERA_DATA_DIR.
    expect(hub.volumeMounts!.find((v) => v.name === 'data')!.mountPath).toBe(
      imageUser('hub.Dockerfile').env.TESSERA_DATA_DIR,
    );
    // PostgreSQL comes from a Secret; every variable the chart sets is one the hub knows.
    const db = hub.env!.find((e) => e.name === 'DATABASE_URL')!;
    expect(db.valueFrom).toEqual({ secretKeyRef: { name: 'tessera-database', key: 'url' } });
    for (const e of hub.env!) expect(hubConfigNames).toContain(e.name);
    expect(hub.env!.find((e) => e.name === 'TESSERA_RUN_MIGRATIONS')!.value).toBe('false');

    // mTLS passthrough: the silo listeners are a LoadBalancer Service straight to the pods, no HTTP ingress.
    const silo = manifests.find((m) => m.kind === 'Service' && m.metadata.name.endsWith('-silo'))!;
    expect(silo.spec.type).toBe('LoadBalancer');
    expect((silo.spec.ports as { port: number; targetPort: string }[]).map((p) => [p.port, p.targetPort])).toEqual([
      [8443, 'silo'],
      [8444, 'enroll'],
    ]);
    const job = manifests.find((m) => m.kind === 'Job')!;
    expect(podOf(job).spec.containers[0]!.args).toEqual(['migrate']);
  });

  it('renders every optional part of the hub: ingress to the console only, operator CA, first administrator, extra env', () => {
    const values = deepMerge(defaults, {
      hub: {
        ingress: { enabled: true, className: 'nginx', tlsSecret: 'tessera-tls', annotations: { a: 'b' } },
        ca: { existingSecret: 'tessera-ca' },
        admin: { passwordSecret: 'tessera-admin' },
        extraEnv: { TESSERA_SILO_CERT_DAYS: 14 },
        migrationJob: false,
        persistence: { existingClaim: 'shared-blobs' },
        siloService: { type: 'NodePort', loadBalancerSourceRanges: ['10.0.0.0/8'] },
      },
      imagePullSecrets: [{ name: 'registry' }],
      nodeSelector: { disk: 'ssd' },
    });
    const manifests = render(values);
    checkWiring(manifests);
    const ingress = manifests.find((m) => m.kind === 'Ingress')!;
    const backend = JSON.stringify(ingress.spec);
    expect(backend).toContain('"name":"http"');
    expect(backend).not.toContain('silo');
    const hub = podOf(manifests.find((m) => m.kind === 'Deployment')!).spec.containers[0]!;
    for (const e of hub.env!) expect(hubConfigNames).toContain(e.name);
    expect(hub.env).toContainEqual({ name: 'TESSERA_CA_KEY_FILE', value: '/etc/tessera/ca/ca.key' });
    expect(hub.env).toContainEqual({ name: 'TESSERA_RUN_MIGRATIONS', value: 'true' });
    expect(manifests.some((m) => m.kind === 'Job' || m.kind === 'PersistentVolumeClaim')).toBe(false);
  });

  it('renders deploy/helm/agent-values.yaml as one agent: single replica, no Service, read-only data, state volume', () => {
    for (const values of [
      agentValues,
      deepMerge(agentValues, {
        agent: {
          policy: JSON.parse(readFileSync(join(REPO, 'deploy/compose/approval-policy.json'), 'utf8')) as unknown,
        },
      }),
    ]) {
      const manifests = render(values);
      checkWiring(manifests);
      expect(manifests.some((m) => m.kind === 'Service' || m.kind === 'Ingress' || m.kind === 'Job')).toBe(false);
      const deployment = manifests.find((m) => m.kind === 'Deployment')!;
      expect(deployment.spec.replicas).toBe(1);
      expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
      const pod = podOf(deployment).spec;
      const agent = pod.containers[0]!;
      const image = imageUser('agent.Dockerfile');
      expect(pod.securityContext?.runAsUser).toBe(image.uid);
      expect(agent.ports).toBeUndefined();
      expect(agent.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data', readOnly: true });
      expect(agent.volumeMounts!.find((v) => v.name === 'state')!.mountPath).toBe(image.env.TESSERA_STATE_DIR);
      for (const e of agent.env!) expect(agentEnvNames).toContain(e.name);
      const policy = manifests.find((m) => m.kind === 'ConfigMap');
      if (policy) {
        // The agent parses it as JSON.
        expect(JSON.parse(policy.data!['approval-policy.json']!)).toEqual(
          (values as { agent: { policy: unknown } }).agent.policy,
        );
        expect(agent.env).toContainEqual({ name: 'TESSERA_POLICY_FILE', value: '/etc/tessera/approval-policy.json' });
      }
    }
  });

  it('refuses an unknown component', () => {
    expect(() => render(deepMerge(defaults, { component: 'both' }))).toThrow('component must be hub or agent');
  });
});

describe('the minimal template renderer', () => {
  const one = (source: string, values: unknown = {}) =>
    new ChartRenderer({ 't.yaml': source, '_h.tpl': '{{- define "x" -}}x={{ .a }}{{- end -}}' }).render('t.yaml', {
      Values: values,
    });

  it('trims whitespace on the marked side only, as Go templates do', () => {
    expect(one('a\n  {{- "b" }}\nc')).toBe('ab\nc');
    expect(one('a {{ "b" -}}\n  c')).toBe('a bc');
  });

  it('evaluates if / else if / else, range over maps in key order, with, variables and include', () => {
    expect(one('{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}', { b: 1 })).toBe('B');
    expect(one('{{ range $k, $v := .Values }}{{ $k }}={{ $v }};{{ end }}', { b: 2, a: 1 })).toBe('a=1;b=2;');
    expect(one('{{ with .Values.m }}{{ .n }}{{ else }}none{{ end }}', { m: { n: 5 } })).toBe('5');
    expect(one('{{ $v := .Values.a }}{{ $v }}', { a: 'z' })).toBe('z');
    expect(one('{{ include "x" .Values }}', { a: 7 })).toBe('x=7');
    expect(one('{{ .Values.a | default "d" | quote }}', { a: '' })).toBe('"d"');
    expect(one('k:{{ toYaml .Values | nindent 2 }}', { a: [1, 2] })).toBe('k:\n  a:\n    - 1\n    - 2');
  });

  it('fails on what it does not support rather than rendering something plausible', () => {
    expect(() => one('{{ .Values.a | semverCompare ">1" }}')).toThrow('unsupported function semverCompare');
    expect(() => one('{{ required "need a" .Values.a }}')).toThrow('need a');
    expect(() => one('{{ if .Values.a }}x')).toThrow('if without end');
  });
});
