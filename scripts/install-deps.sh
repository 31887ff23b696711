#!/usr/bin/env bash
# Installs everything needed to build, test, fuzz and benchmark gatewayz on
# Debian 12 (bookworm), then the Node client test's npm packages.
#
# Idempotent: when every package is already installed, apt is not touched at
# all (no network needed); otherwise `apt-get update` and one
# `apt-get install -y --no-install-recommends` of the missing ones.
# GATEWAYZ_APT_FORCE=1 always runs update + install of the full list.
#
# Node: an existing `node` is never replaced (it may come from elsewhere, e.g.
# a newer NodeSource build); Debian's nodejs + npm are installed only when
# `node` is missing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  # toolchain
  build-essential cmake ninja-build ccache g++
  clang-14 libclang-rt-14-dev  # libFuzzer + sanitizer runtimes for scripts/fuzz.sh
  clang-format  # .clang-format (clang-format 14)
  # libraries
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libsqlite3-dev sqlite3
  libdeflate-dev  # gzip for /metrics and Loki pushes
  zlib1g-dev  # the tests' independent gunzip
  libpq-dev postgresql
  libhiredis-dev redis-server
  libmimalloc-dev
  # tools used by tests and benchmarks
  prometheus  # prometheus + promtool (tests/integration, tests/deploy)
  python3 python3-yaml  # tests/deploy: compose file, dashboards, alert rules
  nginx-light wrk
  valgrind  # bench/instructions.sh: instruction counts, steady where timings are not
  curl openssl jq procps util-linux ca-certificates
)

if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo_cmd=(sudo)
fi

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 && "${GATEWAYZ_APT_FORCE:-0}" != "1" ]]; then
  echo "install-deps: all ${#packages[@]} Debian packages already installed"
else
  to_install=("${missing[@]}")
  if [[ "${GATEWAYZ_APT_FORCE:-0}" == "1" ]]; then
    to_install=("${packages[@]}")
  fi
  echo "install-deps: installing ${to_install[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${to_install[@]}"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: 'node' is present ($(command -v node)) but 'npm' is not;" >&2
  echo "install-deps: install npm alongside that node (not replacing it) and re-run" >&2
  exit 1
fi

echo "install-deps: node $(node --version), npm $(npm --version)"
(
  cd "$repo_root/tests/node"
  npm ci --no-audit --no-fund --loglevel=error
)
echo "install-deps: done"
