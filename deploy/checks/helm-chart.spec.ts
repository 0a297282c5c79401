import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AWS_SDK_NAMES,
  REPO,
  agentEnvNames,
  agentValues,
  checkWiring,
  containerOf,
  deepMerge,
  defaults,
  envValue,
  find,
  hubConfigNames,
  imageUser,
  podOf,
  render,
  renderNotes,
  type Manifest,
  type Obj,
} from './helm-chart.test-util';

/**
 * deploy/helm/tessera rendered by the minimal renderer in go-template.test-util.ts (no `helm` here) for the hub's
 * default values, for ../agent-values.yaml, and with each toggle switched; every manifest checked against the
 * hand-written schemas of its kind, then against what the images and the hub expect. The refusals are in
 * helm-refusals.spec.ts.
 */

const S3 = {
  replicaCount: 3,
  hub: {
    blobStore: {
      type: 's3',
      s3: {
        bucket: 'tessera-hub-blobs',
        region: 'eu-central-1',
        endpoint: 'https://minio.internal:9000',
        forcePathStyle: true,
        prefix: 'tessera/',
        sse: 'aws:kms',
        kmsKeyId: 'alias/tessera',
        credentials: { existingSecret: 'tessera-s3', sessionTokenKey: 'session-token' },
      },
    },
  },
};

const kinds = (manifests: Manifest[]) => manifests.map((m) => m.kind).sort();
const probePath = (p: unknown) => (p as { httpGet: { path: string } }).httpGet.path;

describe('the Helm chart deploy/helm/tessera: the hub', () => {
  it('renders the defaults as one hub that works without ReadWriteMany: RWO volume, strategy Recreate, probes, Services, migrations Job', () => {
    const manifests = render(defaults);
    checkWiring(manifests);
    expect(kinds(manifests)).toEqual([
      'Deployment',
      'Job',
      'NetworkPolicy',
      'PersistentVolumeClaim',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    const deployment = find(manifests, 'Deployment')!;
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(find(manifests, 'PersistentVolumeClaim')!.spec.accessModes).toEqual(['ReadWriteOnce']);
    const pod = podOf(deployment).spec;
    const hub = pod.containers[0]!;
    expect(pod.securityContext?.runAsUser).toBe(imageUser('hub.Dockerfile').uid);
    expect(pod.serviceAccountName).toBe('tessera-hub');
    expect(probePath(hub.readinessProbe)).toBe('/health/ready');
    expect(probePath(hub.startupProbe)).toBe('/health/ready');
    // Liveness must not depend on the database: an outage must not restart every hub pod.
    expect(probePath(hub.livenessProbe)).toBe('/health/live');
    expect(hub.ports!.map((p) => [p.name, p.containerPort])).toEqual([
      ['http', 8080],
      ['silo', 8443],
      ['enroll', 8444],
    ]);
    // The data volume at the image's TESSERA_DATA_DIR, a claim since filesystem blobs must survive restarts.
    expect(hub.volumeMounts!.find((v) => v.name === 'data')!.mountPath).toBe(
      imageUser('hub.Dockerfile').env.TESSERA_DATA_DIR,
    );
    expect(pod.volumes!.find((v) => v.name === 'data')).toEqual({
      name: 'data',
      persistentVolumeClaim: { claimName: 'tessera-hub-data' },
    });
    // PostgreSQL and the hub's secrets come from Secrets; every variable the chart sets is one the hub knows.
    expect(envValue(hub, 'DATABASE_URL')!.valueFrom).toEqual({
      secretKeyRef: { name: 'tessera-database', key: 'url' },
    });
    expect(envValue(hub, 'TESSERA_JWT_SECRET')!.valueFrom!.secretKeyRef!.name).toBe('tessera-hub-secrets');
    for (const e of hub.env!) expect(hubConfigNames).toContain(e.name);
    expect(envValue(hub, 'TESSERA_BLOB_STORE')!.value).toBe('filesystem');
    expect(envValue(hub, 'TESSERA_RUN_MIGRATIONS')!.value).toBe('false');

    // mTLS passthrough: the silo listeners are a LoadBalancer Service straight to the pods, no HTTP ingress.
    const silo = find(manifests, 'Service', '-silo')!;
    expect(silo.spec.type).toBe('LoadBalancer');
    expect((silo.spec.ports as { port: number; targetPort: string }[]).map((p) => [p.port, p.targetPort])).toEqual([
      [8443, 'silo'],
      [8444, 'enroll'],
    ]);
    const people = find(manifests, 'Service', '-hub')!;
    expect((people.spec.ports as { targetPort: string }[]).map((p) => p.targetPort)).toEqual(['http']);
    const job = find(manifests, 'Job')!;
    expect(podOf(job).spec.containers[0]!.args).toEqual(['migrate']);
    expect(podOf(job).labels['app.kubernetes.io/component']).toBe('hub-migrate');
    // No budget on a single pod: it would block every node drain.
    expect(find(manifests, 'PodDisruptionBudget')).toBeUndefined();
  });

  it('runs several replicas on PostgreSQL and S3: every S3 value as the hub reads it, credentials from a Secret, no volume, rolling, budget, spread', () => {
    const values = deepMerge(defaults, S3);
    const manifests = render(values);
    checkWiring(manifests);
    expect(kinds(manifests)).toEqual([
      'Deployment',
      'Job',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    const deployment = find(manifests, 'Deployment')!;
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const pod = podOf(deployment).spec;
    expect(pod.volumes!.find((v) => v.name === 'data')).toEqual({ name: 'data', emptyDir: {} });
    expect(pod.topologySpreadConstraints).toHaveLength(1);
    const hub = pod.containers[0]!;
    const plain = Object.fromEntries(hub.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(plain).toMatchObject({
      TESSERA_BLOB_STORE: 's3',
      TESSERA_S3_BUCKET: 'tessera-hub-blobs',
      TESSERA_S3_REGION: 'eu-central-1',
      TESSERA_S3_ENDPOINT: 'https://minio.internal:9000',
      TESSERA_S3_FORCE_PATH_STYLE: 'true',
      TESSERA_S3_PREFIX: 'tessera/',
      TESSERA_S3_PART_SIZE_MIB: '8',
      TESSERA_S3_SSE: 'aws:kms',
      TESSERA_S3_SSE_KMS_KEY_ID: 'alias/tessera',
    });
    expect(envValue(hub, 'AWS_ACCESS_KEY_ID')!.valueFrom).toEqual({
      secretKeyRef: { name: 'tessera-s3', key: 'access-key-id' },
    });
    expect(envValue(hub, 'AWS_SECRET_ACCESS_KEY')!.valueFrom!.secretKeyRef!.key).toBe('secret-access-key');
    expect(envValue(hub, 'AWS_SESSION_TOKEN')!.valueFrom!.secretKeyRef!.key).toBe('session-token');
    for (const e of hub.env!) expect([...hubConfigNames, ...AWS_SDK_NAMES]).toContain(e.name);
    expect(find(manifests, 'PodDisruptionBudget')!.spec.maxUnavailable).toBe(1);

    // Without a credentials Secret the SDK's chain is used (a workload identity on the annotated account).
    const identity = render(
      deepMerge(values, {
        hub: { blobStore: { s3: { credentials: { existingSecret: '' }, endpoint: '', sse: '', kmsKeyId: '' } } },
        serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/tessera-hub' } },
        podDisruptionBudget: { enabled: false },
      }),
    );
    checkWiring(identity);
    const names = containerOf(identity).env!.map((e) => e.name);
    expect(names.filter((n) => n.startsWith('AWS_') || n === 'TESSERA_S3_ENDPOINT' || n === 'TESSERA_S3_SSE')).toEqual(
      [],
    );
    expect(find(identity, 'ServiceAccount')!.metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/tessera-hub',
    });
    expect(find(identity, 'PodDisruptionBudget')).toBeUndefined();
  });

  it('keeps one volume only for what must survive: S3 with generated secrets, or the embedded database', () => {
    const generated = render(deepMerge(defaults, { hub: { ...S3.hub, secrets: { existingSecret: '' } } }));
    checkWiring(generated);
    const hub = containerOf(generated);
    expect(envValue(hub, 'TESSERA_JWT_SECRET')).toBeUndefined();
    expect(envValue(hub, 'TESSERA_CA_KEY_PASSPHRASE')).toBeUndefined();
    expect(find(generated, 'PersistentVolumeClaim')).toBeDefined();

    const embedded = render(
      deepMerge(defaults, {
        hub: { database: { type: 'embedded' }, migrationJob: false, persistence: { existingClaim: 'mine' } },
      }),
    );
    checkWiring(embedded);
    const trial = containerOf(embedded);
    expect(envValue(trial, 'DATABASE_URL')).toBeUndefined();
    expect(envValue(trial, 'TESSERA_DATABASE_POOL_SIZE')).toBeUndefined();
    expect(envValue(trial, 'TESSERA_RUN_MIGRATIONS')!.value).toBe('true');
    expect(kinds(embedded)).not.toContain('Job');
    expect(kinds(embedded)).not.toContain('PersistentVolumeClaim');
    expect(podOf(find(embedded, 'Deployment')!).spec.volumes).toContainEqual({
      name: 'data',
      persistentVolumeClaim: { claimName: 'mine' },
    });
    expect(find(embedded, 'Deployment')!.spec.strategy).toEqual({ type: 'Recreate' });
  });

  it('renders every optional part: ingress to the console only, operator CA, first administrator, extra env, node placement', () => {
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
    const hub = containerOf(manifests);
    for (const e of hub.env!) expect(hubConfigNames).toContain(e.name);
    expect(hub.env).toContainEqual({ name: 'TESSERA_CA_KEY_FILE', value: '/etc/tessera/ca/ca.key' });
    expect(hub.env).toContainEqual({ name: 'TESSERA_SILO_CERT_DAYS', value: '14' });
    expect(hub.env).toContainEqual({ name: 'TESSERA_RUN_MIGRATIONS', value: 'true' });
    expect(envValue(hub, 'TESSERA_ADMIN_PASSWORD')!.valueFrom!.secretKeyRef!.name).toBe('tessera-admin');
    expect(manifests.some((m) => m.kind === 'Job' || m.kind === 'PersistentVolumeClaim')).toBe(false);
  });

  it('puts enrollment on a Service of its own when asked, and then only there', () => {
    const values = deepMerge(defaults, {
      hub: { enrollService: { separate: true, type: 'ClusterIP', annotations: { vpn: 'only' } } },
    });
    const manifests = render(values);
    checkWiring(manifests);
    const ports = (m: Manifest) =>
      (m.spec.ports as { port: number; targetPort: string }[]).map((p) => [p.port, p.targetPort]);
    expect(ports(find(manifests, 'Service', '-silo')!)).toEqual([[8443, 'silo']]);
    const enroll = find(manifests, 'Service', '-enroll')!;
    expect(ports(enroll)).toEqual([[8444, 'enroll']]);
    expect(enroll.spec.type).toBe('ClusterIP');
    expect(enroll.spec.externalTrafficPolicy).toBeUndefined();
    expect(enroll.metadata.annotations).toEqual({ vpn: 'only' });
    expect(renderNotes(values)).toContain('service tessera-hub-enroll, port 8444');
    expect(find(render(defaults), 'Service', '-enroll')).toBeUndefined();
  });

  it('routes the console and /api through the Ingress, never /metrics or /health, and covers every page of the console', () => {
    const manifests = render(deepMerge(defaults, { hub: { ingress: { enabled: true, tlsSecret: 'tessera-tls' } } }));
    checkWiring(manifests);
    const ingress = find(manifests, 'Ingress')!;
    const rules = ingress.spec.rules as {
      http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: Obj } } }[] };
    }[];
    const paths = rules[0]!.http.paths;
    for (const p of paths) expect(p.backend.service).toEqual({ name: 'tessera-hub', port: { name: 'http' } });
    // Kubernetes' Prefix matches whole path elements; Exact the path itself.
    const routed = (url: string) =>
      paths.some((p) => (p.pathType === 'Exact' ? url === p.path : url === p.path || url.startsWith(`${p.path}/`)));
    for (const url of ['/metrics', '/health', '/health/live', '/health/ready', '/silo/rounds', '/enroll']) {
      expect(routed(url), url).toBe(false);
    }
    // Every top-level route of the console's router, every file of its public/ folder, its built assets and the API.
    const app = readFileSync(join(REPO, 'apps/console/src/app.tsx'), 'utf8');
    const pages = [...app.matchAll(/path: '\/?([a-z-]+)/g)].map((m) => `/${m[1]!}`);
    expect(pages).toContain('/studies');
    const publicFiles = readdirSync(join(REPO, 'apps/console/public')).map((f) => `/${f}`);
    for (const url of [...pages, ...publicFiles, '/', '/assets/index-abc.js', '/api/studies', '/studies/42/edit']) {
      expect(routed(url), url).toBe(true);
    }
  });

  it('scrapes /metrics through a ServiceMonitor on the console/API Service when asked, with the labels Prometheus selects', () => {
    const manifests = render(
      deepMerge(defaults, {
        metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } } },
      }),
    );
    checkWiring(manifests);
    const monitor = find(manifests, 'ServiceMonitor')!;
    expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    expect(monitor.spec.endpoints).toEqual([
      { port: 'http', path: '/metrics', scheme: 'http', interval: '30s', scrapeTimeout: '10s' },
    ]);
    expect(find(render(defaults), 'ServiceMonitor')).toBeUndefined();
  });

  it('restricts traffic with a NetworkPolicy: the three listeners from the named peers, egress to DNS and the named peers', () => {
    const open = find(render(defaults), 'NetworkPolicy')!;
    expect(open.spec.policyTypes).toEqual(['Ingress']);
    const rules = open.spec.ingress as { ports: { port: string }[]; from?: unknown }[];
    expect(rules.map((r) => r.ports.map((p) => p.port))).toEqual([['http'], ['silo', 'enroll']]);
    expect(rules.every((r) => r.from === undefined)).toBe(true);

    const ingressController = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
    };
    const hospitals = { ipBlock: { cidr: '192.0.2.0/24' } };
    const database = { to: [{ ipBlock: { cidr: '10.20.0.5/32' } }], ports: [{ port: 5432, protocol: 'TCP' }] };
    const manifests = render(
      deepMerge(defaults, {
        networkPolicy: { httpFrom: [ingressController], siloFrom: [hospitals], egress: [database] },
      }),
    );
    checkWiring(manifests);
    const closed = find(manifests, 'NetworkPolicy')!;
    expect(closed.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect((closed.spec.ingress as { from: unknown[] }[]).map((r) => r.from)).toEqual([
      [ingressController],
      [hospitals],
    ]);
    const egress = closed.spec.egress as { ports: { port: number }[] }[];
    expect(egress[0]!.ports.map((p) => p.port)).toEqual([53, 53]);
    expect(egress.slice(1)).toEqual([database]);

    expect(find(render(deepMerge(defaults, { networkPolicy: { enabled: false } })), 'NetworkPolicy')).toBeUndefined();
  });

  it('prints NOTES.txt with the three listeners, the one-replica note and the first-administrator command', () => {
    const notes = renderNotes(defaults);
    expect(notes).toContain('service tessera-hub, port 8080');
    expect(notes).toContain('service tessera-hub-silo, port 8443 -> https://tessera-silo.example.org:8443');
    expect(notes).toContain('strategy Recreate');
    expect(notes).toContain('tessera-hub admin create');
    const several = renderNotes(deepMerge(defaults, { ...S3, hub: { ...S3.hub, admin: { passwordSecret: 'a' } } }));
    expect(several).toContain('3 replica(s), database postgresql, blobs on s3');
    expect(several).not.toContain('strategy Recreate');
    expect(several).not.toContain('admin create');
  });
});

describe('the Helm chart deploy/helm/tessera: upgrades', () => {
  it('changes no immutable field between any two hub configurations, so helm upgrade can move between them', () => {
    const renderings = [
      defaults,
      deepMerge(defaults, S3),
      deepMerge(defaults, { hub: { database: { type: 'embedded' }, migrationJob: false } }),
      deepMerge(defaults, { hub: { enrollService: { separate: true }, ingress: { enabled: true } } }),
    ].map(render);
    const first = renderings[0]!;
    for (const manifests of renderings.slice(1)) {
      // Deployment.spec.selector is immutable: one selector for every configuration.
      expect(find(manifests, 'Deployment')!.spec.selector).toEqual(find(first, 'Deployment')!.spec.selector);
      expect(find(manifests, 'Deployment')!.metadata.name).toBe(find(first, 'Deployment')!.metadata.name);
      expect(find(manifests, 'Service', '-hub')!.spec.selector).toEqual(find(first, 'Service', '-hub')!.spec.selector);
      const claim = find(manifests, 'PersistentVolumeClaim');
      if (claim) expect(claim.metadata.name).toBe(find(first, 'PersistentVolumeClaim')!.metadata.name);
    }
    // A Job's pod template is immutable: the hook deletes the previous Job before creating the next one, and the
    // claims outlive `helm uninstall` (blobs and the agent's identity are not the chart's to delete).
    const job = find(first, 'Job')!;
    expect(job.metadata.annotations!['helm.sh/hook-delete-policy']).toContain('before-hook-creation');
    for (const values of [defaults, agentValues]) {
      expect(find(render(values), 'PersistentVolumeClaim')!.metadata.annotations).toEqual({
        'helm.sh/resource-policy': 'keep',
      });
    }
  });
});

describe('the Helm chart deploy/helm/tessera: an agent (deploy/helm/agent-values.yaml)', () => {
  it('renders one agent: single replica, no Service, read-only data, state volume, enrollment bundle from a Secret, no inbound traffic', () => {
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
      expect(manifests.some((m) => ['Service', 'Ingress', 'Job', 'PodDisruptionBudget'].includes(m.kind))).toBe(false);
      const deployment = find(manifests, 'Deployment')!;
      expect(deployment.spec.replicas).toBe(1);
      expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
      const pod = podOf(deployment).spec;
      const agent = pod.containers[0]!;
      const image = imageUser('agent.Dockerfile');
      expect(pod.securityContext?.runAsUser).toBe(image.uid);
      expect(agent.ports).toBeUndefined();
      expect(agent.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data', readOnly: true });
      expect(agent.volumeMounts!.find((v) => v.name === 'state')!.mountPath).toBe(image.env.TESSERA_STATE_DIR);
      expect(pod.volumes!.find((v) => v.name === 'state')).toEqual({
        name: 'state',
        persistentVolumeClaim: { claimName: 'tessera-agent-state' },
      });
      expect(find(manifests, 'PersistentVolumeClaim')!.spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(envValue(agent, 'TESSERA_ENROLLMENT_BUNDLE')!.valueFrom).toEqual({
        secretKeyRef: { name: 'tessera-enrollment', key: 'bundle', optional: true },
      });
      for (const e of agent.env!) expect(agentEnvNames).toContain(e.name);
      // The agent only connects out: its policy admits nothing.
      const policy = find(manifests, 'NetworkPolicy')!;
      expect(policy.spec.ingress).toEqual([]);
      expect(renderNotes(values)).toContain('tessera-agent status');
      const configMap = find(manifests, 'ConfigMap');
      if (configMap) {
        // The agent parses it as JSON.
        expect(JSON.parse(configMap.data!['approval-policy.json']!)).toEqual(
          (values as { agent: { policy: unknown } }).agent.policy,
        );
        expect(agent.env).toContainEqual({ name: 'TESSERA_POLICY_FILE', value: '/etc/tessera/approval-policy.json' });
      }
    }
  });
});

describe('the values reference in docs/operator-guide.md', () => {
  const guide = readFileSync(join(REPO, 'docs/operator-guide.md'), 'utf8');
  const start = guide.indexOf('### Values reference');
  const reference = guide.slice(start, guide.indexOf('\n### ', start + 1));
  // Free-form values (Kubernetes objects, maps of names) are documented as a whole, not key by key.
  const WHOLE = new Set([
    'podSecurityContext',
    'securityContext',
    'resources',
    'serviceAccount.annotations',
    'networkPolicy.httpFrom',
    'networkPolicy.siloFrom',
    'networkPolicy.egress',
    'metrics.serviceMonitor.labels',
    'hub.extraEnv',
    'hub.ingress.annotations',
    'hub.siloService.annotations',
    'agent.env',
    'agent.data.volume',
    'agent.policy',
  ]);
  const leaves = (value: unknown, path: string[]): string[][] =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && !WHOLE.has(path.join('.'))
      ? Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]))
      : [path];

  it('names every value of values.yaml, by its path or as .key beside its parent', () => {
    expect(start).toBeGreaterThan(0);
    const missing = leaves(defaults, [])
      .filter((path) => !reference.includes(`\`${path.join('.')}\``) && !reference.includes(`.${path.at(-1)!}`))
      .map((path) => path.join('.'));
    expect(missing).toEqual([]);
  });
});
