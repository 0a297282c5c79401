#!/usr/bin/env bash
# Debian packages the tests need; installed only when absent.
set -euo pipefail
need=()
command -v pg_isready > /dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
