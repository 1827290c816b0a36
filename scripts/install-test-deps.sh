#!/usr/bin/env bash
# Debian packages the integration tests use: a real Prosody 0.12 with its SQL drivers and the
# community modules (mod_privilege), a real ejabberd 23.01 with its SQLite/PostgreSQL/MySQL
# drivers, plus the sqlite3 shell. Idempotent; needs root (or sudo).
set -euo pipefail

packages=(prosody prosody-modules lua-dbi-sqlite3 lua-dbi-postgresql lua-dbi-mysql sqlite3 ejabberd erlang-p1-sqlite3 erlang-p1-pgsql erlang-p1-mysql)
# systemd-analyze verifies examples/xporta.service (test/packaging.test.ts).
command -v systemd-analyze >/dev/null || packages+=(systemd)
# This machine kind runs PostgreSQL and MariaDB already; a bare Debian gets them here.
command -v pg_isready >/dev/null || packages+=(postgresql)
command -v mariadb-admin >/dev/null || packages+=(mariadb-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's package starts a system Prosody on the default ports; the tests run their own on free
# loopback ports, so the system one is only in the way.
if pgrep -u prosody -x lua5.4 >/dev/null 2>&1 || pgrep -f '/usr/bin/prosody' >/dev/null 2>&1; then
  $SUDO service prosody stop >/dev/null 2>&1 || true
fi

# Likewise for ejabberd (where a policy allows the package to start it): the tests run their own
# Erlang nodes with their own names, so the system node is stopped and left alone after that.
if pgrep -u ejabberd -f 'beam.*ejabberd' >/dev/null 2>&1; then
  $SUDO service ejabberd stop >/dev/null 2>&1 || true
fi

# PostgreSQL (trust auth on loopback) and MariaDB (root without password) are started by the
# machine; start them if they are down.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if command -v mariadb-admin >/dev/null && ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi
