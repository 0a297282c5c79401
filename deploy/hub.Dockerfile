# syntax=docker/dockerfile:1
# Tessera hub: console/API (8080), silo mutual TLS (8443) and enrollment TLS (8444) listeners, and the web
# console's static build, served by the hub at /.
#
#   docker build -f deploy/hub.Dockerfile -t tessera-hub .        (from the repository root)
#
# Configured only by environment variables (docs/configuration.md); no secret is baked in. State outside
# PostgreSQL (blobs; generated secrets when none are given) lives in the volume /var/lib/tessera-hub.
# The base images are pinned to the Node.js release the tests run on; bump all three FROM lines together.

# ---- build: the whole workspace with its development dependencies ----
FROM node:20.20.2-bookworm AS build
WORKDIR /src
# npm 10 (this image's) runs every install script; onnxruntime-node's would download CUDA libraries.
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Manifests first, so the dependency layer is rebuilt only when a manifest or the lockfile changes.
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
# `npm run build` builds the libraries, the hub, the agent and the console (apps/console/dist).
RUN npm run build \
  && { test -f apps/console/dist/index.html || { echo "apps/console/dist/index.html is missing: npm run build must build the console" >&2; exit 1; }; }

# ---- production dependencies of the hub only ----
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
RUN npm ci --omit=dev --workspace @tessera/hub --no-audit --no-fund \
  && node /tmp/prune-dev-dependencies.mjs /opt/tessera \
  && npm cache clean --force

# ---- runtime ----
FROM node:20.20.2-bookworm-slim AS runtime
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
COPY --from=build /src/libs/canonical/package.json libs/canonical/
COPY --from=build /src/libs/canonical/dist libs/canonical/dist
COPY --from=build /src/libs/protocol/package.json libs/protocol/
COPY --from=build /src/libs/protocol/dist libs/protocol/dist
COPY --from=build /src/libs/pki/package.json libs/pki/
COPY --from=build /src/libs/pki/dist libs/pki/dist
COPY --from=build /src/libs/dp/package.json libs/dp/
COPY --from=build /src/libs/dp/dist libs/dp/dist
COPY --from=build /src/libs/aggregation/package.json libs/aggregation/
COPY --from=build /src/libs/aggregation/dist libs/aggregation/dist
COPY --from=build /src/libs/ml/package.json libs/ml/
COPY --from=build /src/libs/ml/dist libs/ml/dist
COPY --from=build /src/libs/audit/package.json libs/audit/
COPY --from=build /src/libs/audit/dist libs/audit/dist
COPY --from=build /src/libs/secagg/package.json libs/secagg/
COPY --from=build /src/libs/secagg/dist libs/secagg/dist
COPY --from=build /src/apps/hub/package.json apps/hub/
COPY --from=build /src/apps/hub/dist apps/hub/dist
COPY --from=build /src/apps/console/dist apps/console/dist
USER 10001:10001
VOLUME ["/var/lib/tessera-hub"]
EXPOSE 8080 8443 8444
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/opt/tessera/apps/hub/dist/deploy/healthcheck.js"]
ENTRYPOINT ["node", "/opt/tessera/apps/hub/dist/cli/tessera-hub.js"]
CMD ["serve"]
