#!/usr/bin/env bash
# Debian packages the tests need; installed only when absent.
set -euo pipefail
need=()
command -v pg_isready > /dev/null || need+=(postgresql-client)
command -v docker-compose > /dev/null || need+=(docker-compose) # deployment checks: docker-compose config
command -v shellcheck > /dev/null || need+=(shellcheck)         # deployment checks: the shell scripts
command -v pdftoppm > /dev/null || need+=(poppler-utils)
command -v chromium > /dev/null || need+=(chromium)
command -v flock > /dev/null || need+=(util-linux)    # the embedded database's data-directory lock
command -v chattr > /dev/null || need+=(e2fsprogs)    # fault suite: an immutable (read-only even for root) blob store
compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null || need+=(postgresql) # fault suite: a private cluster
# S3 blob store tests: OpenStack Swift's S3 API (s3api) on loopback, the real S3-protocol server Debian ships
command -v swift-proxy-server > /dev/null || need+=(swift-proxy swift-account swift-container swift-object)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
