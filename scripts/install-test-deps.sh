#!/usr/bin/env bash
# Debian packages the integration tests use: a real Prosody 0.12 with its SQL drivers and the
# community modules (mod_privilege), a real ejabberd 23.01 with its SQLite/PostgreSQL/MySQL
# drivers, plus the sqlite3 shell, and Debian's Chromium for the web page's browser tests
# (test/web/, driven by playwright-core). Idempotent; needs root (or sudo).
set -euo pipefail

packages=(prosody prosody-modules lua-dbi-sqlite3 lua-dbi-postgresql lua-dbi-mysql sqlite3 ejabberd erlang-p1-sqlite3 erlang-p1-pgsql erlang-p1-mysql chromium)
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

# The current generation, Prosody 13 and ejabberd 24.12, from bookworm-backports, unpacked under a
# fixed prefix beside the stable packages (never dpkg -i: 0.12 and 23.01 stay installed and in
# use). The launchers are copies with their directories rewritten to the prefix. Skipped when the
# prefix already holds the unpacked version.
RIG="${XPORTA_RIG_DIR:-/opt/xporta-rig}"
PROSODY13="$RIG/prosody-13"
EJABBERD24="$RIG/ejabberd-24.12"
prosody13_marker="$PROSODY13/usr/lib/prosody/prosody.version"
ejabberd24_marker="$EJABBERD24/usr/lib/x86_64-linux-gnu/ejabberd-24.12/ebin/ejabberd.app"

if [ ! -s "$prosody13_marker" ] || [ ! -f "$EJABBERD24/usr/sbin/ejabberdctl.xporta" ] || [ ! -f "$ejabberd24_marker" ] || [ ! -x "$PROSODY13/bin/prosodyctl" ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "adding bookworm-backports to apt's sources"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
      $SUDO tee /etc/apt/sources.list.d/xporta-backports.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  if ! apt-cache policy prosody | grep -q '~bpo'; then $SUDO apt-get update -qq; fi
  dl="$(mktemp -d)"
  chmod 755 "$dl"
  trap 'rm -rf "$dl"' EXIT
  ej_deps=(erlang-jose)
  for p in acme cache-tab eimp mqtree pkix stringprep stun tls utils xml xmpp yaml yconf zlib sqlite3 pgsql mysql; do ej_deps+=("erlang-p1-$p"); done

  if [ ! -s "$prosody13_marker" ] || [ ! -x "$PROSODY13/bin/prosodyctl" ]; then
    echo "unpacking Prosody 13 from bookworm-backports into $PROSODY13"
    mkdir -p "$dl/prosody"
    # apt fetches as _apt where it can write; otherwise it warns and fetches as root.
    chown _apt "$dl/prosody" 2>/dev/null || true
    (cd "$dl/prosody" && apt-get download -qq prosody/bookworm-backports prosody-modules/bookworm-backports)
    $SUDO rm -rf "$PROSODY13"
    $SUDO mkdir -p "$PROSODY13/bin"
    for deb in "$dl"/prosody/*.deb; do $SUDO dpkg -x "$deb" "$PROSODY13"; done
    # The launchers read their directories only from these literal lines (not from the environment).
    for tool in prosody prosodyctl prosody-migrator; do
      [ -f "$PROSODY13/usr/bin/$tool" ] || continue
      sed -e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$PROSODY13/usr/lib/prosody';|" \
          -e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$PROSODY13/etc/prosody';|" \
          -e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$PROSODY13/usr/lib/prosody/modules/';|" \
          -e "s|^CFG_DATADIR=.*|CFG_DATADIR='$PROSODY13/var/lib/prosody';|" \
          "$PROSODY13/usr/bin/$tool" | $SUDO tee "$PROSODY13/bin/$tool" >/dev/null
      $SUDO chmod 755 "$PROSODY13/bin/$tool"
    done
  fi

  if [ ! -f "$ejabberd24_marker" ] || [ ! -f "$EJABBERD24/usr/sbin/ejabberdctl.xporta" ]; then
    echo "unpacking ejabberd 24.12 from bookworm-backports into $EJABBERD24"
    mkdir -p "$dl/ejabberd"
    chown _apt "$dl/ejabberd" 2>/dev/null || true
    pkgs=(ejabberd/bookworm-backports)
    for p in "${ej_deps[@]}"; do pkgs+=("$p/bookworm-backports"); done
    (cd "$dl/ejabberd" && apt-get download -qq "${pkgs[@]}")
    $SUDO rm -rf "$EJABBERD24"
    $SUDO mkdir -p "$EJABBERD24"
    for deb in "$dl"/ejabberd/*.deb; do $SUDO dpkg -x "$deb" "$EJABBERD24"; done
    sed -e "s|^ERL_LIBS=.*|ERL_LIBS='$EJABBERD24/usr/lib/x86_64-linux-gnu:$EJABBERD24/usr/lib/erlang/lib'|" \
      "$EJABBERD24/usr/sbin/ejabberdctl" | $SUDO tee "$EJABBERD24/usr/sbin/ejabberdctl.xporta" >/dev/null
    $SUDO chmod 755 "$EJABBERD24/usr/sbin/ejabberdctl.xporta"
  fi
fi
