#!/bin/sh
# Entrypoint of the tessera-agent image (deploy/agent.Dockerfile).
#
#   no arguments, or `run [flags]`: enroll once if the state volume holds no identity and a bundle is given,
#                                   then exec `tessera-agent run [flags]`: the agent replaces this shell as PID 1,
#                                   so `docker stop`'s SIGTERM reaches it and it stops after the current step.
#   any other command:              exec `tessera-agent <command>` as is (status, studies list, renew, ...).
#
# Configuration is environment only (the image sets the defaults):
#   TESSERA_STATE_DIR               the state volume: key, certificate, approvals, ledger, receipts
#   TESSERA_DATA_FILE               the silo's data file, inside the read-only /data volume
#   TESSERA_ENROLLMENT_BUNDLE       the one-time bundle as text (first start only)
#   TESSERA_ENROLLMENT_BUNDLE_FILE  the same, as a file (docker-compose.yml hands bundles over this way)
#   TESSERA_POLICY_FILE             optional approval policy
#   TESSERA_AGENT_BIN               the agent's main.js; the image's path by default (tests point it at the build)
#
# The integration test apps/hub/src/deploy/agent-container.int-spec.ts runs this very file.
set -eu

AGENT_BIN="${TESSERA_AGENT_BIN:-/opt/tessera/apps/agent/dist/main.js}"
TESSERA_STATE_DIR="${TESSERA_STATE_DIR:-/var/lib/tessera}"
export TESSERA_STATE_DIR

say() { printf '%s\n' "tessera-agent entrypoint: $*" >&2; }

if [ ! -f "$AGENT_BIN" ]; then
  say "the agent program $AGENT_BIN does not exist (TESSERA_AGENT_BIN)"
  exit 2
fi

# Commands other than `run` (status, studies, renew, enroll, --help) go straight to the agent.
if [ "$#" -gt 0 ] && [ "$1" != "run" ]; then
  exec node "$AGENT_BIN" "$@"
fi
if [ "$#" -gt 0 ]; then shift; fi

if [ ! -d "$TESSERA_STATE_DIR" ] || [ ! -w "$TESSERA_STATE_DIR" ]; then
  say "the state directory $TESSERA_STATE_DIR is missing or not writable by uid $(id -u)."
  say "Mount a volume there; a host directory must belong to uid $(id -u) (chown $(id -u):$(id -g) <dir>)."
  exit 2
fi

if [ -n "${TESSERA_DATA_FILE:-}" ]; then
  if [ ! -r "$TESSERA_DATA_FILE" ]; then
    say "the data file $TESSERA_DATA_FILE (TESSERA_DATA_FILE) is missing or not readable by uid $(id -u)."
    exit 2
  fi
  # The agent only reads the data; a writable mount is a configuration mistake worth saying out loud.
  if [ -w "$(dirname "$TESSERA_DATA_FILE")" ] && [ "$(id -u)" != "0" ]; then
    say "warning: $(dirname "$TESSERA_DATA_FILE") is writable; mount the data read-only (-v <dir>:/data:ro)."
  fi
fi

if [ ! -f "$TESSERA_STATE_DIR/identity/identity.json" ]; then
  if [ -n "${TESSERA_ENROLLMENT_BUNDLE:-}" ]; then
    say "no identity in $TESSERA_STATE_DIR yet: enrolling with TESSERA_ENROLLMENT_BUNDLE"
    node "$AGENT_BIN" enroll
  elif [ -n "${TESSERA_ENROLLMENT_BUNDLE_FILE:-}" ]; then
    if [ ! -r "$TESSERA_ENROLLMENT_BUNDLE_FILE" ]; then
      say "TESSERA_ENROLLMENT_BUNDLE_FILE names $TESSERA_ENROLLMENT_BUNDLE_FILE, which is missing or unreadable."
      exit 2
    fi
    say "no identity in $TESSERA_STATE_DIR yet: enrolling with $TESSERA_ENROLLMENT_BUNDLE_FILE"
    node "$AGENT_BIN" enroll --bundle "$TESSERA_ENROLLMENT_BUNDLE_FILE"
  else
    say "this agent is not enrolled (no $TESSERA_STATE_DIR/identity/identity.json) and no bundle was given."
    say "Set TESSERA_ENROLLMENT_BUNDLE (or TESSERA_ENROLLMENT_BUNDLE_FILE) to the bundle from the hub's administrator."
    exit 2
  fi
elif [ -n "${TESSERA_ENROLLMENT_BUNDLE:-}${TESSERA_ENROLLMENT_BUNDLE_FILE:-}" ]; then
  # The bundle's token is single-use and already spent: enrolling again would fail and must not replace the key.
  say "already enrolled; the enrollment bundle is ignored (it can be removed from the configuration)"
fi

exec node "$AGENT_BIN" run "$@"
