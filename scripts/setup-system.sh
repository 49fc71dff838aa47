#!/usr/bin/env bash
# System packages the project needs beyond Python (idempotent; run by `make install` and `.ci/run`).
#   softhsm2       PKCS#11 token for the signing keys in dev/test (libsofthsm2.so, softhsm2-util)
#   opensc         pkcs11-tool (inspecting the token by hand)
#   poppler-utils  pdftotext/pdftoppm (tests read the visible signature text back)
#   fonts-dejavu-core  DejaVu Sans, embedded in visible signatures (every Vietnamese glyph)
#   chromium       the browser the console's Playwright tests drive (never `playwright install`)
#   redis-server, redis-tools  Redis 7 (cluster mode) and redis-cli --cluster for tests/cluster.py and the bench
# Installs only what is missing; `apt-get update` at most once. Not root and something missing: says so.
set -euo pipefail

need=()
have_file() { [ -e "$1" ]; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }

softhsm_lib() {
  for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -e "$p" ] && return 0
  done
  return 1
}

softhsm_lib && have_cmd softhsm2-util || need+=(softhsm2)
have_cmd pkcs11-tool || need+=(opensc)
have_cmd pdftotext || need+=(poppler-utils)
have_file /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || need+=(fonts-dejavu-core)
have_cmd chromium || have_cmd chromium-browser || need+=(chromium)
have_cmd redis-server || need+=(redis-server)  # tests/cluster.py: a 3-master Redis Cluster; the bench's Redis
have_cmd redis-cli || need+=(redis-tools)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! have_cmd apt-get; then
  echo "setup-system: missing ${need[*]} and no apt-get; install them with the system's package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if have_cmd sudo; then SUDO="sudo"; else
    echo "setup-system: missing ${need[*]}; run as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
echo "setup-system: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
