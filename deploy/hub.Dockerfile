# Tessera hub: console/API (8080), silo mutual TLS (8443) and enrollment TLS (8444) listeners, and the web
# console's static build, served by the hub at /.
#
#   docker build -f deploy/hub.Dockerfile -t tessera-hub .        (from the repository root)
#
# Configured only by environment variables (docs/configuration.md); no secret is baked in. State outside
# PostgreSQL (blobs; generated secrets when none are given) lives in the volume /var/lib/tessera-hub.
#
# Base images are build arguments: the defaults are the official Node.js images a user pulls; a site with its own
# registry mirror or hardened base images passes its own (--build-arg NODE_IMAGE=... --build-arg NODE_SLIM_IMAGE=...,
# the same Node.js release; CI builds local stand-ins from Debian packages, .ci/containers.sh). Both defaults name
# one Node.js LTS release: bump them together, here and in deploy/agent.Dockerfile.
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

# ---- production dependencies of the hub only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /opt/tessera
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
COPY --from=manifests /manifests/ ./
COPY deploy/prune-dev-dependencies.mjs /tmp/
RUN npm ci --omit=dev --workspace @tessera/hub --no-audit --no-fund \
  && node /tmp/prune-dev-dependencies.mjs /opt/tessera \
  && npm cache clean --force

# ---- runtime ----
FROM ${NODE_SLIM_IMAGE} AS runtime
ENV NODE_ENV=production \
    TESSERA_HOST=0.0.0.0 \
    TESSERA_SILO_HOST=0.0.0.0 \
    TESSERA_ENROLL_HOST=0.0.0.0 \
    TESSERA_DATA_DIR=/var/lib/tessera-hub
RUN groupadd --system --gid 10001 tessera \
  && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera-hub --no-create-home \
       --shell /usr/sbin/nologin tessera \
  && mkdir -p /var/lib/tessera-hub \
  && chown tessera:tessera /var/lib/tessera-hub \
  && chmod 0700 /var/lib/tessera-hub \
  && printf '#!/bin/sh\nexec node /opt/tessera/apps/hub/dist/cli/tessera-hub.js "$@"\n' > /usr/local/bin/tessera-hub \
  && chmod 0755 /usr/local/bin/tessera-hub
WORKDIR /opt/tessera
COPY --from=deps /opt/tessera/node_modules ./node_modules
COPY --from=build /src/package.json ./
# Every library's build (package.json and dist, a few hundred kilobytes each), so a new library needs no new line.
COPY --from=build /opt/builds/libs libs
COPY --from=build /opt/builds/apps/hub apps/hub
COPY --from=build /opt/builds/apps/console/dist apps/console/dist
USER 10001:10001
VOLUME ["/var/lib/tessera-hub"]
EXPOSE 8080 8443 8444
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/opt/tessera/apps/hub/dist/deploy/healthcheck.js"]
ENTRYPOINT ["node", "/opt/tessera/apps/hub/dist/cli/tessera-hub.js"]
CMD ["serve"]
