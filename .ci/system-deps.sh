#!/usr/bin/env bash
# Debian packages the tests need; installed only when absent.
set -euo pipefail
need=()
command -v pg_isready > /dev/null || need+=(postgresql-client)
command -v docker-compose > /dev/null || need+=(docker-compose) # deployment checks: docker-compose config
command -v shellcheck > /dev/null || need+=(shellcheck)         # deployment checks: the shell scripts
command -v pdftoppm > /dev/null || need+=(poppler-utils)
command -v chromium > /dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
