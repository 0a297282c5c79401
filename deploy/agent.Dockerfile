# Tessera agent: runs inside a hospital next to its data and only ever connects out to the hub.
#
#   docker build -f deploy/agent.Dockerfile -t tessera-agent .      (from the repository root)
#
# Configured only by environment variables and two volumes (docs/silo-guide.md):
#   /data              the silo's data, mounted read-only
#   /var/lib/tessera   the agent's state: key, certificate, approvals, privacy ledger, receipts, audit log
# No inbound port, no Docker socket, no secret baked in (the enrollment bundle arrives at run time).
#
# Base images are build arguments: the defaults are the official Node.js images a user pulls; a site with its own
# registry mirror or hardened base images passes its own (--build-arg NODE_IMAGE=... --build-arg NODE_SLIM_IMAGE=...,
# the same Node.js release; CI builds local stand-ins from Debian packages, .ci/containers.sh). Both defaults name
# one Node.js LTS release: bump them together, here and in deploy/hub.Dockerfile.
# No `# syntax=` line: the Dockerfile frontend built into the engine is used, so a build needs no frontend image
# from a registry (offline and mirrored builds work).
ARG NODE_IMAGE=node:24.22.3-bookworm
ARG NODE_SLIM_IMAGE=node:24.22.3-bookworm-slim

# ---- every workspace's package.json and nothing else: the dependency layers below are rebuilt only when one changes ----
FROM ${NODE_IMAGE} AS manifests
COPY . /src
RUN node /src/deploy/collect-workspaces.mjs manifests /src /manifests

# ---- build: the whole workspace with its development dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# onnxruntime-node's install script would download CUDA libraries: npm 11 follows package.json's allowScripts, and
# this variable stops the script under npm 10 (a base image of an older Node.js).
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Manifests first, so the dependency layer is rebuilt only when a manifest or the lockfile changes.
COPY package.json package-lock.json .npmrc ./
COPY --from=manifests /manifests/ ./
RUN npm ci --no-audit --no-fund
COPY . .
# `npm run build` builds the libraries, the hub, the agent and the console (apps/console/dist); /opt/builds then
# holds each workspace's package.json and dist only. This stage is the same in deploy/agent.Dockerfile, so building
# both images on one engine builds the workspace once.
RUN npm run build \
  && { test -f apps/console/dist/index.html || { echo "apps/console/dist/index.html is missing: npm run build must build the console" >&2; exit 1; }; } \
  && node deploy/collect-workspaces.mjs builds /src /opt/builds

# ---- production dependencies of the agent, plus the native TensorFlow binding ----
# @tensorflow/tfjs-node is added here only (not in the repository's manifests: developers and CI run on the wasm
# backend). Its install script downloads libtensorflow, so this stage needs the network; its version must equal
# @tensorflow/tfjs in the lockfile so that both share one tfjs-core (libs/ml selectBackend then picks 'tensorflow';
# where the binding cannot load, it falls back to wasm). Where libtensorflow cannot be downloaded (an offline build,
# this repository's CI), --build-arg TFJS_NODE_VERSION= leaves the binding out and the agent runs on wasm.
FROM ${NODE_IMAGE} AS deps
ARG TFJS_NODE_VERSION=4.22.0
WORKDIR /opt/tessera
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
COPY --from=manifests /manifests/ ./
COPY deploy/prune-dev-dependencies.mjs /tmp/
RUN if [ -n "$TFJS_NODE_VERSION" ]; then \
      npm pkg set "dependencies.@tensorflow/tfjs-node=$TFJS_NODE_VERSION" --workspace @tessera/agent; \
    fi \
  && npm install --omit=dev --workspace @tessera/agent --no-audit --no-fund \
  && node /tmp/prune-dev-dependencies.mjs /opt/tessera \
  && { [ -z "$TFJS_NODE_VERSION" ] || node -e "require('@tensorflow/tfjs-node')"; } \
  && npm cache clean --force

# ---- runtime ----
FROM ${NODE_SLIM_IMAGE} AS runtime
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
# Every library's build (package.json and dist, a few hundred kilobytes each), so a new library needs no new line.
COPY --from=build /opt/builds/libs libs
COPY --from=build /opt/builds/apps/agent apps/agent
COPY --chmod=0755 deploy/agent-entrypoint.sh /usr/local/bin/tessera-agent-entrypoint
USER 10001:10001
VOLUME ["/var/lib/tessera"]
# Liveness: identity present and the hub answers this agent over mutual TLS (exit 1 otherwise).
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 CMD ["tessera-agent", "status"]
ENTRYPOINT ["/usr/local/bin/tessera-agent-entrypoint"]
CMD ["run"]
