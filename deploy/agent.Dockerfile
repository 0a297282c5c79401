# syntax=docker/dockerfile:1
# Tessera agent: runs inside a hospital next to its data and only ever connects out to the hub.
#
#   docker build -f deploy/agent.Dockerfile -t tessera-agent .      (from the repository root)
#
# Configured only by environment variables and two volumes (docs/silo-guide.md):
#   /data              the silo's data, mounted read-only
#   /var/lib/tessera   the agent's state: key, certificate, approvals, privacy ledger, receipts, audit log
# No inbound port, no Docker socket, no secret baked in (the enrollment bundle arrives at run time).
# The base images are pinned to the Node.js release the tests run on; bump all three FROM lines together.

# ---- build: the whole workspace with its development dependencies ----
FROM node:20.20.2-bookworm AS build
WORKDIR /src
# npm 10 (this image's) runs every install script; onnxruntime-node's would download CUDA libraries.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
COPY apps/hub/package.json apps/hub/
COPY apps/agent/package.json apps/agent/
COPY apps/console/package.json apps/console/
COPY libs/canonical/package.json libs/canonical/
COPY libs/protocol/package.json libs/protocol/
COPY libs/pki/package.json libs/pki/
COPY libs/dp/package.json libs/dp/
COPY libs/aggregation/package.json libs/aggregation/
COPY libs/ml/package.json libs/ml/
COPY libs/audit/package.json libs/audit/
COPY libs/secagg/package.json libs/secagg/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- production dependencies of the agent, plus the native TensorFlow binding ----
# @tensorflow/tfjs-node is added here only (not in the repository's manifests: developers and CI run on the wasm
# backend). Its install script downloads libtensorflow, so this stage needs the network; its version must equal
# @tensorflow/tfjs in the lockfile so that both share one tfjs-core (libs/ml selectBackend then picks 'tensorflow';
# where the binding cannot load, it falls back to wasm).
FROM node:20.20.2-bookworm AS deps
WORKDIR /opt/tessera
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
COPY apps/hub/package.json apps/hub/
COPY apps/agent/package.json apps/agent/
COPY apps/console/package.json apps/console/
COPY libs/canonical/package.json libs/canonical/
COPY libs/protocol/package.json libs/protocol/
COPY libs/pki/package.json libs/pki/
COPY libs/dp/package.json libs/dp/
COPY libs/aggregation/package.json libs/aggregation/
COPY libs/ml/package.json libs/ml/
COPY libs/audit/package.json libs/audit/
COPY libs/secagg/package.json libs/secagg/
COPY deploy/prune-dev-dependencies.mjs /tmp/
RUN npm pkg set 'dependencies.@tensorflow/tfjs-node=4.22.0' --workspace @tessera/agent \
  && npm install --omit=dev --workspace @tessera/agent --no-audit --no-fund \
  && node /tmp/prune-dev-dependencies.mjs /opt/tessera \
  && node -e "require('@tensorflow/tfjs-node')" \
  && npm cache clean --force

# ---- runtime ----
FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production \
    TESSERA_STATE_DIR=/var/lib/tessera \
    TESSERA_AGENT_BIN=/opt/tessera/apps/agent/dist/main.js
RUN groupadd --system --gid 10001 tessera \
  && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera --no-create-home \
       --shell /usr/sbin/nologin tessera \
  && mkdir -p /var/lib/tessera /data \
  && chown tessera:tessera /var/lib/tessera \
  && chmod 0700 /var/lib/tessera \
  && printf '#!/bin/sh\nexec node /opt/tessera/apps/agent/dist/main.js "$@"\n' > /usr/local/bin/tessera-agent \
  && chmod 0755 /usr/local/bin/tessera-agent
WORKDIR /opt/tessera
COPY --from=deps /opt/tessera/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/libs/canonical/package.json libs/canonical/
COPY --from=build /src/libs/canonical/dist libs/canonical/dist
COPY --from=build /src/libs/protocol/package.json libs/protocol/
COPY --from=build /src/libs/protocol/dist libs/protocol/dist
COPY --from=build /src/libs/pki/package.json libs/pki/
COPY --from=build /src/libs/pki/dist libs/pki/dist
COPY --from=build /src/libs/dp/package.json libs/dp/
COPY --from=build /src/libs/dp/dist libs/dp/dist
COPY --from=build /src/libs/ml/package.json libs/ml/
COPY --from=build /src/libs/ml/dist libs/ml/dist
COPY --from=build /src/libs/audit/package.json libs/audit/
COPY --from=build /src/libs/audit/dist libs/audit/dist
COPY --from=build /src/apps/agent/package.json apps/agent/
COPY --from=build /src/apps/agent/dist apps/agent/dist
COPY --chmod=0755 deploy/agent-entrypoint.sh /usr/local/bin/tessera-agent-entrypoint
USER 10001:10001
VOLUME ["/var/lib/tessera"]
# Liveness: identity present and the hub answers this agent over mutual TLS (exit 1 otherwise).
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 CMD ["tessera-agent", "status"]
ENTRYPOINT ["/usr/local/bin/tessera-agent-entrypoint"]
CMD ["run"]
