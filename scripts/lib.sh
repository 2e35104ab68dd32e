# shellcheck shell=bash
# Shared by scripts/test, scripts/develop and scripts/bench: provides Python >= 3.14.2,
# one virtualenv per Home Assistant pin and a FerretDB (MongoDB wire protocol) server.
# Everything expensive is cached under $SCROBBLER_CACHE_DIR (default: .cache/, git-ignored).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SCROBBLER_CACHE_DIR:-$REPO/.cache}"
ROOTFS="$CACHE/rootfs-forky"
PY_MIN_VERSION="3.14.2"
declare -A HA_VERSION=([latest]="2026.10.4" [min]="2026.3.1")

PY_MODE=""   # host | chroot
PY_BIN=""    # python3.14 executable, as seen from inside the environment

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE"

py_is_new_enough() {
    "$1" -c "import sys; sys.exit(sys.version_info < (${PY_MIN_VERSION//./, }))" 2>/dev/null
}

# The Debian mirror the host already uses (never a hard-coded host).
debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(
        {
            grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
            grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print ($2 ~ /^\[/) ? $3 : $2}'
        } | grep -E '/debian/?$' | head -n1
    )"
    [[ -n "$uri" ]] || die "no Debian mirror in the host's apt sources; set DEBIAN_MIRROR"
    echo "${uri%/}"
}

build_rootfs() {
    [[ $EUID -eq 0 ]] || die "no Python >= $PY_MIN_VERSION on this machine, and building a Debian rootfs needs root"
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    local script=/usr/share/debootstrap/scripts/forky mirror
    [[ -e "$script" ]] || script=/usr/share/debootstrap/scripts/sid
    mirror="$(debian_mirror)"
    log "building a Debian forky rootfs with Python 3.14 from $mirror (once, ~1 min)"
    rm -rf "$ROOTFS.partial"
    debootstrap --variant=minbase \
        --include=python3.14,python3.14-venv,python3.14-dev,gcc,ca-certificates \
        forky "$ROOTFS.partial" "$mirror" "$script" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    rm -rf "$ROOTFS"
    mv "$ROOTFS.partial" "$ROOTFS"
    touch "$ROOTFS/.complete"
}

# Network and package-index configuration of the host, refreshed on every run.
sync_rootfs_config() {
    cp /etc/resolv.conf /etc/hosts "$ROOTFS/etc/"
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
    [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$ROOTFS/etc/pip.conf"
    [[ -f "$HOME/.config/pip/pip.conf" ]] && mkdir -p "$ROOTFS/root/.config/pip" && cp "$HOME/.config/pip/pip.conf" "$ROOTFS/root/.config/pip/"
    return 0
}

ensure_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.14 python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null && py_is_new_enough "$(command -v "$candidate")"; then
            PY_MODE=host PY_BIN="$(command -v "$candidate")"
            return
        fi
    done
    if command -v uv >/dev/null && candidate="$(uv python find ">=$PY_MIN_VERSION" 2>/dev/null)" && py_is_new_enough "$candidate"; then
        PY_MODE=host PY_BIN="$candidate"
        return
    fi
    [[ -f "$ROOTFS/.complete" ]] || build_rootfs
    sync_rootfs_config
    PY_MODE=chroot PY_BIN=/usr/bin/python3.14
}

# Run a command in the Python environment, with the repository at the same path and as
# the working directory. The chroot's mounts live in a private mount namespace, so they
# vanish with the command whatever way it ends.
in_env() {
    if [[ "$PY_MODE" == host ]]; then
        (cd "$REPO" && "$@")
        return
    fi
    local -a env_args=()
    [[ -n "${PIP_FIND_LINKS:-}" && ! -d "${PIP_FIND_LINKS}" ]] && env_args+=(-u PIP_FIND_LINKS)
    unshare --mount --propagation private -- bash -c '
        set -e
        rootfs="$1" repo="$2"; shift 2
        mount -t proc proc "$rootfs/proc"
        mount --rbind /dev "$rootfs/dev"
        mkdir -p "$rootfs$repo"
        mount --bind "$repo" "$rootfs$repo"
        exec chroot "$rootfs" /usr/bin/env "$@"
    ' in_env "$ROOTFS" "$REPO" "${env_args[@]}" -C "$REPO" "$@"
}

venv_dir() { echo "$CACHE/venvs/$1"; }

# One virtualenv per HA pin, rebuilt when its requirements or the interpreter change.
ensure_venv() {
    local pin="$1" venv stamp
    [[ -f "$REPO/requirements/test-$pin.txt" ]] || die "unknown HA pin '$pin' (use latest or min)"
    venv="$(venv_dir "$pin")"
    local reqs=("$REPO/requirements/test-$pin.txt" "$REPO/requirements/test-common.txt")
    # scripts/test runs every linter from the latest pin's virtualenv.
    if [[ "$pin" == latest ]]; then reqs+=("$REPO/requirements/lint.txt"); fi
    stamp="$PY_MODE $PY_BIN $(cat "${reqs[@]}" | sha256sum | cut -c1-16)"
    if [[ -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$stamp" ]]; then
        return
    fi
    log "creating the $pin virtualenv (HA ${HA_VERSION[$pin]}; ~1-2 min once)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    in_env "$PY_BIN" -m venv "$venv"
    in_env "$venv/bin/pip" install -q --upgrade pip
    in_env "$venv/bin/pip" install -q -r "requirements/test-$pin.txt"
    if [[ "$pin" == latest ]]; then in_env "$venv/bin/pip" install -q -r requirements/lint.txt; fi
    echo "$stamp" >"$venv/.stamp"
}

# ---------------------------------------------------------------- FerretDB

FERRETDB_BIN="$CACHE/bin/ferretdb-launcher"
FERRETDB_PID=""
FERRETDB_DIR=""
# Non-empty: start_ferretdb puts it in a session of its own, out of reach of the terminal's
# Ctrl-C, so that the caller decides when it stops (scripts/develop stops HA first).
FERRETDB_SETSID=""

ensure_ferretdb() {
    local src="$REPO/scripts/ferretdb" stamp
    stamp="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
    if [[ -x "$FERRETDB_BIN" && -f "$FERRETDB_BIN.stamp" && "$(cat "$FERRETDB_BIN.stamp")" == "$stamp" ]]; then
        return
    fi
    command -v go >/dev/null || die "Go is needed to build FerretDB (or set MONGODB_URI to an existing server)"
    log "building FerretDB v1.24.2 (embedded, SQLite handler; once, ~1-2 min)"
    mkdir -p "$(dirname "$FERRETDB_BIN")"
    (cd "$src" && go build -trimpath -o "$FERRETDB_BIN" .) || die "building FerretDB failed"
    echo "$stamp" >"$FERRETDB_BIN.stamp"
}

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free TCP port found"
}

# start_ferretdb PORT DATA_DIR: start it in the background and wait until it accepts connections.
start_ferretdb() {
    local port="$1"
    FERRETDB_DIR="$2"
    mkdir -p "$FERRETDB_DIR"
    ${FERRETDB_SETSID:+setsid} "$FERRETDB_BIN" -listen "127.0.0.1:$port" -dir "$FERRETDB_DIR/data" >"$FERRETDB_DIR/ferretdb.log" 2>&1 &
    FERRETDB_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            export MONGODB_URI="mongodb://127.0.0.1:$port/"
            return
        fi
        kill -0 "$FERRETDB_PID" 2>/dev/null || { cat "$FERRETDB_DIR/ferretdb.log" >&2; die "FerretDB exited at startup"; }
        sleep 0.1
    done
    die "FerretDB did not listen on 127.0.0.1:$port within 10 s"
}

stop_ferretdb() {
    if [[ -n "$FERRETDB_PID" ]] && kill -0 "$FERRETDB_PID" 2>/dev/null; then
        kill "$FERRETDB_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$FERRETDB_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$FERRETDB_PID" 2>/dev/null || true
        wait "$FERRETDB_PID" 2>/dev/null || true
    fi
    FERRETDB_PID=""
}
