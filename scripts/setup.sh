#!/usr/bin/env bash
# Set up everything the dashboard and its tests need, on Debian 12, idempotently.
#
#   bash scripts/setup.sh
#
# Cheap when everything is already there (CI and developers run it before every run): each
# step checks first and only does work when something is missing or a lock/requirements file
# changed since the last successful install (hash stamps in .venv/ and node_modules/).
#   1. Debian packages: MariaDB, Redis, memcached, Chromium, Python venv + headers, Node/npm.
#      Only the binaries are needed: scripts and tests start private instances
#      (dashboard/demo/services.py), never the system services.
#   2. .venv with requirements-dev.txt (which includes requirements.txt).
#   3. node_modules from package-lock.json, then the browser bundles copied (with .gz
#      siblings) into dashboard/static/vendor/ -- never committed.
# Environment: PYTHON (interpreter for the venv, default python3 on PATH),
#              SETUP_SKIP_APT=1 to skip step 1 (e.g. when not root and all is installed).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
sha() { cat "$@" | sha256sum | cut -d' ' -f1; }

START=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - START) / 1000000 )) ms"; }

# One set-up at a time per checkout (parallel test runs would otherwise race on pip/npm).
exec 9>"$ROOT/.setup.lock"
if command -v flock >/dev/null; then
    flock -w 900 9 || die "another scripts/setup.sh holds $ROOT/.setup.lock"
fi

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
APT_PKGS=(mariadb-server mariadb-client redis-server memcached chromium
          python3-venv python3-dev gcc ca-certificates
          iproute2 # ip netns, veth, bridges: the multi-machine tests (tests/support/netns.py)
          nginx    # binary only: tests check deploy/nginx/ with a private nginx on a loopback port
          systemd  # systemd-analyze verify checks deploy/systemd/ (nothing is started)
          postgresql) # binaries only (/usr/lib/postgresql/15/bin): tests/support/pg.py runs a
                      # private cluster (initdb in a temporary directory); store_url's backend
if command -v node >/dev/null && command -v npm >/dev/null; then
    : # Node.js and npm already there (here: NodeSource's node 20 with its bundled npm 11).
      # Debian's npm package depends on Debian's nodejs and would fight with it: leave it be.
elif command -v node >/dev/null; then
    die "node is on PATH but npm is not; install npm for $(command -v node) (for NodeSource's
    nodejs package, reinstall it: it bundles npm) and run this again"
else
    APT_PKGS+=(nodejs npm)
fi

missing_pkgs() {
    local p status
    for p in "${APT_PKGS[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
    done
}

if [[ ${SETUP_SKIP_APT:-0} == 1 ]]; then
    say "apt: skipped (SETUP_SKIP_APT=1)"
else
    mapfile -t MISSING < <(missing_pkgs)
    if ((${#MISSING[@]})); then
        SUDO=()
        if [[ $(id -u) != 0 ]]; then
            command -v sudo >/dev/null || die "need root (or sudo) to install: ${MISSING[*]}"
            SUDO=(sudo -n)
        fi
        say "apt: installing ${MISSING[*]}"
        APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
                  -o Dpkg::Options::=--force-confold)
        APT_LOG=$(mktemp -t setup-apt.XXXXXX.log)
        apt_fail() { tail -n 40 "$APT_LOG" >&2; die "$1 (full log: $APT_LOG)"; }
        "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -qq </dev/null >>"$APT_LOG" 2>&1 \
            || apt_fail "apt-get update failed"
        "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
            "${MISSING[@]}" </dev/null >>"$APT_LOG" 2>&1 || apt_fail "apt-get install failed"
        rm -f "$APT_LOG"
        mapfile -t STILL < <(missing_pkgs)
        ((${#STILL[@]} == 0)) || die "still missing after apt-get install: ${STILL[*]}"
        # apt may have started system mariadb/redis/memcached; nothing here uses them (private
        # instances on free loopback ports), so they are left as apt set them up.
    else
        say "apt: all ${#APT_PKGS[@]} packages present"
    fi
fi
for bin in mariadbd mariadb-install-db mariadb redis-server memcached chromium nginx systemd-analyze node npm; do
    command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || die "$bin not found after set-up"
done
for bin in initdb postgres; do
    [[ -x /usr/lib/postgresql/15/bin/$bin ]] || die "/usr/lib/postgresql/15/bin/$bin not found after set-up"
done

# ---------------------------------------------------------------------------------------------
# 2. Python virtual environment
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "$PY not found"
VENV=$ROOT/.venv
if [[ -x $VENV/bin/python ]] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    say "venv: $VENV is broken (its interpreter went away?); recreating"
    rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
    say "venv: creating .venv with $("$PY" --version 2>&1) ($(command -v "$PY"))"
    "$PY" -m venv "$VENV" || die "python -m venv failed"
fi
PY_ID=$("$VENV/bin/python" -c 'import sys; print(sys.version)')
WANT=$(printf '%s\n%s\n' "$PY_ID" "$(sha requirements.txt requirements-dev.txt)" | sha256sum | cut -d' ' -f1)
STAMP=$VENV/.requirements.sha256
if [[ ! -f $STAMP || $(<"$STAMP") != "$WANT" ]]; then
    say "pip: installing requirements-dev.txt into .venv"
    # (grep drops this machine's noise about missing local index folders, keeps the rest)
    "$VENV/bin/python" -m pip install -q --no-input -r requirements-dev.txt 2>&1 \
        | { grep -v "^WARNING: Location 'file:.*' is ignored: it is neither" || true; } \
        || die "pip install failed"
    "$VENV/bin/python" -m pip check >/dev/null || say "pip: warning: 'pip check' reports conflicts"
    printf '%s\n' "$WANT" >"$STAMP"
else
    say "pip: requirements unchanged"
fi
# The server runs under `python -OO` (dashboard/__main__.py): its bytecode without docstrings is
# compiled here, since Python does not write it where PYTHONDONTWRITEBYTECODE is set or the
# service user cannot write (it would compile ~700 modules at every start). Once per set of
# requirements (its own stamp: an install from before this step gets it too). The standard
# library's as well where writable (as root: .opt-2.pyc files beside Debian's own .pyc, which
# Python recompiles by itself if a package update leaves them stale).
OPT_STAMP=$VENV/.opt2-compiled.sha256
if [[ ! -f $OPT_STAMP || $(<"$OPT_STAMP") != "$WANT" ]]; then
    say "compileall: bytecode for python -OO"
    "$VENV/bin/python" -OO -m compileall -q -j 0 "$VENV/lib" >/dev/null \
        || say "compileall: warning: some of .venv was not compiled for -OO"
    "$VENV/bin/python" -OO -m compileall -q -j 0 \
        "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
        >/dev/null 2>&1 || true
    printf '%s\n' "$WANT" >"$OPT_STAMP"
fi
# The project's own modules, for -OO too (quick when nothing changed).
"$VENV/bin/python" -OO -m compileall -q -j 0 dashboard alerts ./*.py >/dev/null \
    || say "compileall: warning: some of the project was not compiled for -OO"

# ---------------------------------------------------------------------------------------------
# 3. Browser libraries from the npm registry -> dashboard/static/vendor/
NPM_STAMP=$ROOT/node_modules/.package-lock.sha256
NPM_WANT=$(sha package.json package-lock.json)
if [[ ! -f $NPM_STAMP || $(<"$NPM_STAMP") != "$NPM_WANT" ]]; then
    say "npm: npm ci"
    npm ci --no-audit --no-fund --loglevel=error </dev/null || die "npm ci failed"
    printf '%s\n' "$NPM_WANT" >"$NPM_STAMP"
else
    say "npm: package-lock.json unchanged"
fi

VENDOR=$ROOT/dashboard/static/vendor
mkdir -p "$VENDOR"
copied=0
vendor() {  # vendor SRC NAME: copy when different, plus a reproducible NAME.gz beside it
    local src=$ROOT/node_modules/$1 dst=$VENDOR/$2
    [[ -f $src ]] || die "missing $src (npm ci incomplete?)"
    if [[ ! -f $dst || ! -f $dst.gz ]] || ! cmp -s "$src" "$dst"; then
        cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"
        gzip -9 -n -c "$dst" >"$dst.gz.tmp" && mv -f "$dst.gz.tmp" "$dst.gz"
        copied=$((copied + 1))
    fi
}
vendor plotly.js-basic-dist-min/plotly-basic.min.js plotly-basic.min.js
vendor socket.io-client/dist/socket.io.min.js socket.io.min.js
if ((copied)); then
    say "vendor: copied $copied file(s) (+ .gz) into dashboard/static/vendor/"
else
    say "vendor: up to date"
fi

say "done in $(elapsed)"
