{{- define "tessera.fullname" -}}
{{- printf "%s-%s" .Release.Name .Values.component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tessera.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.component }}
{{- end -}}

{{- define "tessera.labels" -}}
{{ include "tessera.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tessera.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "tessera.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "tessera.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the hub's data directory must survive restarts: filesystem blobs, the embedded database, or
secrets generated on first start. Otherwise the pods keep nothing there and it is an emptyDir. */}}
{{- define "tessera.hubNeedsVolume" -}}
{{- $hub := .Values.hub -}}
{{- if or (eq $hub.blobStore.type "filesystem") (eq $hub.database.type "embedded") (not $hub.secrets.existingSecret) -}}
true
{{- end -}}
{{- end -}}

{{/* Refuses, with the reason, every combination of values that renders but cannot work. Included by the
Deployment, so `helm install`, `helm upgrade` and `helm template` all stop on it. */}}
{{- define "tessera.validate" -}}
{{- if not (has .Values.component (list "hub" "agent")) -}}
{{- fail "component must be hub or agent" -}}
{{- end -}}
{{- if eq .Values.component "agent" -}}
{{- $agent := .Values.agent -}}
{{- if not (hasPrefix "/data/" (toString (index $agent.env "TESSERA_DATA_FILE"))) -}}
{{- fail "agent.env.TESSERA_DATA_FILE must name a file under /data/, where the chart mounts agent.data.volume read-only" -}}
{{- end -}}
{{- range $name := list "TESSERA_STATE_DIR" "TESSERA_ENROLLMENT_BUNDLE" "TESSERA_ENROLLMENT_BUNDLE_FILE" "TESSERA_POLICY_FILE" -}}
{{- if hasKey $agent.env $name -}}
{{- fail (printf "agent.env must not set %s: the chart manages it (agent.state, agent.enrollment, agent.policy)" $name) -}}
{{- end -}}
{{- end -}}
{{- if and (not $agent.enrollment.existingSecret) (not $agent.state.existingClaim) -}}
{{- fail "a new agent needs its enrollment bundle: set agent.enrollment.existingSecret, or agent.state.existingClaim for the state of an agent that has enrolled" -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.component "hub" -}}
{{- $hub := .Values.hub -}}
{{- $replicas := int .Values.replicaCount -}}
{{- if not (has $hub.database.type (list "postgresql" "embedded")) -}}
{{- fail (printf "hub.database.type must be postgresql or embedded, not %s" $hub.database.type) -}}
{{- end -}}
{{- if not (has $hub.blobStore.type (list "filesystem" "s3")) -}}
{{- fail (printf "hub.blobStore.type must be filesystem or s3, not %s" $hub.blobStore.type) -}}
{{- end -}}
{{- if lt $replicas 1 -}}
{{- fail "replicaCount must be at least 1 for the hub" -}}
{{- end -}}
{{- if and (gt $replicas 1) (ne $hub.database.type "postgresql") -}}
{{- fail "replicaCount > 1 needs hub.database.type=postgresql: the embedded database can be opened by one process only" -}}
{{- end -}}
{{- if and (gt $replicas 1) (ne $hub.blobStore.type "s3") -}}
{{- fail "replicaCount > 1 needs hub.blobStore.type=s3: filesystem blobs live on one ReadWriteOnce volume, which a second pod cannot mount" -}}
{{- end -}}
{{- if and (gt $replicas 1) (not $hub.secrets.existingSecret) -}}
{{- fail "replicaCount > 1 needs hub.secrets.existingSecret: each replica would otherwise generate its own session key and CA passphrase" -}}
{{- end -}}
{{- if and (eq $hub.database.type "embedded") $hub.migrationJob -}}
{{- fail "hub.migrationJob needs hub.database.type=postgresql (a Job cannot open the embedded database of the hub's volume): set hub.migrationJob=false, the hub then migrates at boot" -}}
{{- end -}}
{{- if and $hub.ca.existingSecret (not $hub.secrets.existingSecret) -}}
{{- fail "hub.ca.existingSecret needs hub.secrets.existingSecret: its ca.key is encrypted under the passphrase that Secret holds, never under a generated one" -}}
{{- end -}}
{{- if eq $hub.database.type "postgresql" -}}
{{- $_ := required "hub.database.existingSecret is required with hub.database.type=postgresql" $hub.database.existingSecret -}}
{{- end -}}
{{- if eq $hub.blobStore.type "s3" -}}
{{- $_ := required "hub.blobStore.s3.bucket is required with hub.blobStore.type=s3" $hub.blobStore.s3.bucket -}}
{{- $_ := required "hub.blobStore.s3.region is required with hub.blobStore.type=s3 (S3-compatible stores usually accept us-east-1)" $hub.blobStore.s3.region -}}
{{- if and $hub.blobStore.s3.kmsKeyId (ne $hub.blobStore.s3.sse "aws:kms") -}}
{{- fail "hub.blobStore.s3.kmsKeyId needs hub.blobStore.s3.sse=aws:kms" -}}
{{- end -}}
{{- end -}}
{{- range $name := list "DATABASE_URL" "TESSERA_DATABASE_POOL_SIZE" "TESSERA_JWT_SECRET" "TESSERA_CA_KEY_PASSPHRASE" "TESSERA_CA_CERT_FILE" "TESSERA_CA_KEY_FILE" "TESSERA_DATA_DIR" "TESSERA_RUN_MIGRATIONS" "TESSERA_BLOB_STORE" "TESSERA_S3_BUCKET" "TESSERA_S3_REGION" "TESSERA_S3_ENDPOINT" "TESSERA_S3_FORCE_PATH_STYLE" "TESSERA_S3_PREFIX" "TESSERA_S3_PART_SIZE_MIB" "TESSERA_S3_SSE" "TESSERA_S3_SSE_KMS_KEY_ID" "TESSERA_SERVER_NAMES" "TESSERA_PUBLIC_SILO_URL" "TESSERA_PUBLIC_ENROLL_URL" "TESSERA_TRUSTED_PROXIES" "TESSERA_LOG_LEVEL" -}}
{{- if hasKey $hub.extraEnv $name -}}
{{- fail (printf "hub.extraEnv must not set %s: the chart manages it through its own values (docs/operator-guide.md, values reference)" $name) -}}
{{- end -}}
{{- end -}}
{{- if $hub.ingress.enabled -}}
{{- $_ := required "hub.ingress.host is required with hub.ingress.enabled" $hub.ingress.host -}}
{{- end -}}
{{- end -}}
{{- end -}}
