import Ajv, { type ValidateFunction } from 'ajv';

/**
 * Hand-written JSON schemas for the Kubernetes kinds the chart renders, following the API reference of
 * Kubernetes v1.30 (https://kubernetes.io/docs/reference/kubernetes-api/: Deployment apps/v1, Job batch/v1,
 * Service v1, PersistentVolumeClaim v1, ConfigMap v1, ServiceAccount v1, Ingress and NetworkPolicy
 * networking.k8s.io/v1, PodDisruptionBudget policy/v1) and of the Prometheus Operator's ServiceMonitor
 * (monitoring.coreos.com/v1, its CRD reference). They cover the fields the chart
 * uses, with `additionalProperties: false` where a misspelt key (readinesProbe, containerport) would otherwise be
 * silently ignored by a reader of the YAML; they are a subset, not the full OpenAPI of Kubernetes.
 */

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string', minLength: 1 };
const port: Schema = { type: 'integer', minimum: 1, maximum: 65535 };
const name63: Schema = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' };
const portName: Schema = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$' };
const stringMap: Schema = { type: 'object', additionalProperties: { type: 'string' } };
const intOrPercent: Schema = {
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^[0-9]+%$' },
  ],
};
const labelSelector: Schema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    matchLabels: stringMap,
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        additionalProperties: false,
        properties: {
          key: str,
          operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
};
/** NetworkPolicyPeer: exactly the three selectors Kubernetes knows (a misspelt one would allow everything). */
const networkPolicyPeer: Schema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    podSelector: { type: 'object' },
    namespaceSelector: { type: 'object' },
    ipBlock: {
      type: 'object',
      required: ['cidr'],
      additionalProperties: false,
      properties: { cidr: str, except: { type: 'array', items: str } },
    },
  },
};
const networkPolicyPort: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    port: {
      anyOf: [
        { type: 'integer', minimum: 1, maximum: 65535 },
        { type: 'string', minLength: 1 },
      ],
    },
    endPort: { type: 'integer', minimum: 1, maximum: 65535 },
    protocol: { enum: ['TCP', 'UDP', 'SCTP'] },
  },
};
const quantity: Schema = {
  anyOf: [{ type: 'string', pattern: '^[0-9.]+(m|k|Ki|Mi|Gi|Ti|M|G|T)?$' }, { type: 'number' }],
};

const metadata: Schema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: name63, namespace: str, labels: stringMap, annotations: stringMap },
};

const probe: Schema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    httpGet: {
      type: 'object',
      required: ['port'],
      additionalProperties: false,
      properties: { path: { type: 'string', pattern: '^/' }, port: { anyOf: [port, portName] }, scheme: str },
    },
    tcpSocket: { type: 'object', required: ['port'], properties: { port: { anyOf: [port, portName] } } },
    exec: {
      type: 'object',
      required: ['command'],
      additionalProperties: false,
      properties: { command: { type: 'array', minItems: 1, items: str } },
    },
    initialDelaySeconds: { type: 'integer', minimum: 0 },
    periodSeconds: { type: 'integer', minimum: 1 },
    timeoutSeconds: { type: 'integer', minimum: 1 },
    failureThreshold: { type: 'integer', minimum: 1 },
    successThreshold: { type: 'integer', minimum: 1 },
  },
};

const envVar: Schema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    value: { type: 'string' },
    valueFrom: {
      type: 'object',
      additionalProperties: false,
      properties: {
        secretKeyRef: {
          type: 'object',
          required: ['name', 'key'],
          additionalProperties: false,
          properties: { name: name63, key: str, optional: { type: 'boolean' } },
        },
        configMapKeyRef: {
          type: 'object',
          required: ['name', 'key'],
          properties: { name: name63, key: str, optional: { type: 'boolean' } },
        },
      },
    },
  },
  // Exactly one source: a literal value or a reference.
  oneOf: [{ required: ['value'] }, { required: ['valueFrom'] }],
};

const securityContext: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    allowPrivilegeEscalation: { type: 'boolean' },
    readOnlyRootFilesystem: { type: 'boolean' },
    runAsNonRoot: { type: 'boolean' },
    runAsUser: { type: 'integer' },
    runAsGroup: { type: 'integer' },
    privileged: { type: 'boolean' },
    capabilities: {
      type: 'object',
      additionalProperties: false,
      properties: { drop: { type: 'array', items: str }, add: { type: 'array', items: str } },
    },
  },
};

const container: Schema = {
  type: 'object',
  required: ['name', 'image'],
  additionalProperties: false,
  properties: {
    name: name63,
    image: str,
    imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
    command: { type: 'array', items: { type: 'string' } },
    args: { type: 'array', items: { type: 'string' } },
    env: { type: 'array', items: envVar },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        required: ['containerPort'],
        additionalProperties: false,
        properties: { name: portName, containerPort: port, protocol: { enum: ['TCP', 'UDP', 'SCTP'] } },
      },
    },
    startupProbe: probe,
    readinessProbe: probe,
    livenessProbe: probe,
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        requests: { type: 'object', additionalProperties: quantity },
        limits: { type: 'object', additionalProperties: quantity },
      },
    },
    securityContext,
    volumeMounts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'mountPath'],
        additionalProperties: false,
        properties: { name: name63, mountPath: { type: 'string', pattern: '^/' }, readOnly: { type: 'boolean' } },
      },
    },
  },
};

const volume: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: name63,
    emptyDir: { type: 'object' },
    persistentVolumeClaim: {
      type: 'object',
      required: ['claimName'],
      additionalProperties: false,
      properties: { claimName: name63, readOnly: { type: 'boolean' } },
    },
    secret: {
      type: 'object',
      required: ['secretName'],
      properties: { secretName: name63, defaultMode: { type: 'integer', minimum: 0, maximum: 511 } },
    },
    configMap: { type: 'object', required: ['name'], properties: { name: name63 } },
  },
  // A volume has exactly one source (the chart's data volume may be any kind: at least one besides the name).
  minProperties: 2,
};

const podSpec: Schema = {
  type: 'object',
  required: ['containers'],
  additionalProperties: false,
  properties: {
    containers: { type: 'array', minItems: 1, items: container },
    volumes: { type: 'array', items: volume },
    restartPolicy: { enum: ['Always', 'OnFailure', 'Never'] },
    serviceAccountName: name63,
    automountServiceAccountToken: { type: 'boolean' },
    topologySpreadConstraints: {
      type: 'array',
      items: {
        type: 'object',
        required: ['maxSkew', 'topologyKey', 'whenUnsatisfiable'],
        additionalProperties: false,
        properties: {
          maxSkew: { type: 'integer', minimum: 1 },
          topologyKey: str,
          whenUnsatisfiable: { enum: ['DoNotSchedule', 'ScheduleAnyway'] },
          labelSelector: { type: 'object', additionalProperties: false, properties: { matchLabels: stringMap } },
        },
      },
    },
    enableServiceLinks: { type: 'boolean' },
    imagePullSecrets: { type: 'array', items: { type: 'object', required: ['name'] } },
    securityContext: {
      type: 'object',
      additionalProperties: false,
      properties: {
        runAsNonRoot: { type: 'boolean' },
        runAsUser: { type: 'integer', minimum: 1 },
        runAsGroup: { type: 'integer' },
        fsGroup: { type: 'integer' },
        seccompProfile: { type: 'object', required: ['type'] },
      },
    },
    nodeSelector: stringMap,
    tolerations: { type: 'array' },
    affinity: { type: 'object' },
  },
};

const podTemplate: Schema = {
  type: 'object',
  required: ['spec'],
  additionalProperties: false,
  properties: {
    metadata: {
      type: 'object',
      additionalProperties: false,
      properties: { labels: stringMap, annotations: stringMap },
    },
    spec: podSpec,
  },
};

function kind(apiVersion: string, kindName: string, spec: Schema, extra: Schema = {}): Schema {
  return {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', ...(Object.keys(extra).length ? Object.keys(extra) : ['spec'])],
    additionalProperties: false,
    properties: { apiVersion: { const: apiVersion }, kind: { const: kindName }, metadata, spec, ...extra },
  };
}

export const KIND_SCHEMAS: Record<string, Schema> = {
  Deployment: kind('apps/v1', 'Deployment', {
    type: 'object',
    required: ['selector', 'template'],
    additionalProperties: false,
    properties: {
      replicas: { type: 'integer', minimum: 0 },
      strategy: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: { enum: ['RollingUpdate', 'Recreate'] },
          rollingUpdate: {
            type: 'object',
            additionalProperties: false,
            properties: { maxSurge: intOrPercent, maxUnavailable: intOrPercent },
          },
        },
        // Kubernetes refuses rollingUpdate with type Recreate.
        if: { properties: { type: { const: 'Recreate' } } },
        then: { not: { required: ['rollingUpdate'] } },
      },
      selector: {
        type: 'object',
        required: ['matchLabels'],
        additionalProperties: false,
        properties: { matchLabels: stringMap },
      },
      template: podTemplate,
    },
  }),
  Job: kind('batch/v1', 'Job', {
    type: 'object',
    required: ['template'],
    additionalProperties: false,
    properties: {
      backoffLimit: { type: 'integer', minimum: 0 },
      activeDeadlineSeconds: { type: 'integer', minimum: 1 },
      template: podTemplate,
    },
  }),
  Service: kind('v1', 'Service', {
    type: 'object',
    required: ['ports', 'selector'],
    additionalProperties: false,
    properties: {
      type: { enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] },
      externalTrafficPolicy: { enum: ['Cluster', 'Local'] },
      loadBalancerSourceRanges: { type: 'array', items: str },
      selector: stringMap,
      ports: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['port'],
          additionalProperties: false,
          properties: {
            name: portName,
            port,
            targetPort: { anyOf: [port, portName] },
            nodePort: { type: 'integer', minimum: 30000, maximum: 32767 },
            protocol: { enum: ['TCP', 'UDP', 'SCTP'] },
          },
        },
      },
    },
  }),
  PersistentVolumeClaim: kind('v1', 'PersistentVolumeClaim', {
    type: 'object',
    required: ['accessModes', 'resources'],
    additionalProperties: false,
    properties: {
      accessModes: {
        type: 'array',
        minItems: 1,
        items: { enum: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] },
      },
      storageClassName: { type: 'string' },
      resources: {
        type: 'object',
        required: ['requests'],
        properties: {
          requests: { type: 'object', required: ['storage'], properties: { storage: quantity } },
        },
      },
    },
  }),
  ConfigMap: kind('v1', 'ConfigMap', {}, { data: stringMap }),
  Ingress: kind('networking.k8s.io/v1', 'Ingress', {
    type: 'object',
    required: ['rules'],
    additionalProperties: false,
    properties: {
      ingressClassName: str,
      tls: { type: 'array', items: { type: 'object', required: ['secretName'] } },
      rules: {
        type: 'array',
        items: {
          type: 'object',
          required: ['http'],
          properties: {
            host: str,
            http: {
              type: 'object',
              required: ['paths'],
              properties: {
                paths: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['path', 'pathType', 'backend'],
                    properties: {
                      path: str,
                      pathType: { enum: ['Prefix', 'Exact', 'ImplementationSpecific'] },
                      backend: {
                        type: 'object',
                        required: ['service'],
                        properties: {
                          service: {
                            type: 'object',
                            required: ['name', 'port'],
                            properties: { name: name63, port: { type: 'object', minProperties: 1 } },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  }),
};

KIND_SCHEMAS.ServiceAccount = kind('v1', 'ServiceAccount', {}, { automountServiceAccountToken: { type: 'boolean' } });
KIND_SCHEMAS.PodDisruptionBudget = kind('policy/v1', 'PodDisruptionBudget', {
  type: 'object',
  required: ['selector'],
  additionalProperties: false,
  properties: { minAvailable: intOrPercent, maxUnavailable: intOrPercent, selector: labelSelector },
  // One of the two, never both (the API server refuses both).
  oneOf: [{ required: ['minAvailable'] }, { required: ['maxUnavailable'] }],
});
KIND_SCHEMAS.NetworkPolicy = kind('networking.k8s.io/v1', 'NetworkPolicy', {
  type: 'object',
  required: ['podSelector'],
  additionalProperties: false,
  properties: {
    podSelector: { type: 'object', additionalProperties: false, properties: { matchLabels: stringMap } },
    policyTypes: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['Ingress', 'Egress'] } },
    ingress: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          from: { type: 'array', items: networkPolicyPeer },
          ports: { type: 'array', items: networkPolicyPort },
        },
      },
    },
    egress: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          to: { type: 'array', items: networkPolicyPeer },
          ports: { type: 'array', items: networkPolicyPort },
        },
      },
    },
  },
});
KIND_SCHEMAS.ServiceMonitor = kind('monitoring.coreos.com/v1', 'ServiceMonitor', {
  type: 'object',
  required: ['selector', 'endpoints'],
  additionalProperties: false,
  properties: {
    selector: labelSelector,
    namespaceSelector: {
      type: 'object',
      additionalProperties: false,
      properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: str } },
    },
    endpoints: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          port: portName,
          path: { type: 'string', pattern: '^/' },
          scheme: { enum: ['http', 'https'] },
          interval: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
          scrapeTimeout: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
        },
      },
    },
  },
});

/** Validators per kind; ConfigMap's `spec` requirement is replaced by `data`. */
export function kindValidators(): Record<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  return Object.fromEntries(Object.entries(KIND_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)]));
}
