# shellcheck shell=bash
# Shared by scripts/test and scripts/services: install the local test tools into .local/ and start/stop the
# local services the tests talk to. Sourced, never run; every function works from the repo root ($ROOT).
#
# Why everything lives in .local/: CI runs on a fresh clone of a machine that only has the Rust toolchain,
# Python and Node; whatever the tests need beyond that must be installed by the repo's own scripts, and a
# second run must be fast, so each install step writes a stamp naming what it installed and is skipped when
# the stamp matches.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
LOGS="$LOCAL/logs"

# Pinned versions: a new release of any of these must not change CI behind our back.
# moto 5.2.5: the version our tests were verified with (it honours If-None-Match on PutObject).
TEST_VENV="$LOCAL/venv"
TEST_PY_REQUIREMENTS=("moto[server]==5.2.5" "amazon-sqs-extended-client==1.0.1")
# SAM gets a venv of its own: sharing one with moto makes pip pick an old SAM CLI (1.148) that still needs
# --beta-features for rust-cargolambda (SAM builds Rust with cargo-lambda behind that flag:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/building-rust.html).
SAM_VENV="$LOCAL/sam"
SAM_PY_REQUIREMENTS=("aws-sam-cli==1.170.0" "cargo-lambda==1.9.2")
# cargo-fuzz for the fuzz phase (scripts/fuzz), built from crates.io into its own root.
CARGO_FUZZ_VERSION="0.13.2"
CARGO_FUZZ_ROOT="$LOCAL/cargo"
# The benchmark's tools (scripts/bench): the reference peer's HTTP, S3 and Azure Blob clients in a venv of their
# own, and s3s-fs, an S3 server over a local directory, built from crates.io into the same root as cargo-fuzz.
# s3s-fs 0.14.1 is the newest release that builds with Rust 1.95 (0.15 and later ask for 1.96). Azurite is the
# tests' own (NPM_PACKAGES).
BENCH_VENV="$LOCAL/bench"
BENCH_PY_REQUIREMENTS=("requests==2.34.2" "boto3==1.44.5" "azure-storage-blob==12.31.1")
S3S_FS_VERSION="0.14.1"
NPM_PREFIX="$LOCAL/npm"
NPM_PACKAGES=("azurite@3.35.0")
SAM_RUST_TARGET="aarch64-unknown-linux-gnu"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Installs

# stamp_matches FILE CONTENT: true when FILE holds exactly CONTENT (the install it describes is complete).
stamp_matches() { [[ -f "$1" ]] && [[ "$(cat "$1")" == "$2" ]]; }

# ensure_venv DIR REQUIREMENT...: a venv at DIR with exactly these requirements installed.
ensure_venv() {
    local dir="$1"; shift
    local python_version stamp want
    python_version="$(python3 -c 'import sys; print(sys.version.split()[0])')"
    stamp="$dir/.auditstream-installed"
    want="python=$python_version $*"
    if stamp_matches "$stamp" "$want" && "$dir/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    log "installing into ${dir#"$ROOT"/}: $*"
    # A venv made by another Python (or half-made by an interrupted run) is rebuilt, not patched.
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" </dev/null \
        || die "pip install into ${dir#"$ROOT"/} failed (PyPI must be reachable); rerun to retry"
    printf '%s' "$want" >"$stamp"
}

ensure_npm_packages() {
    local stamp="$NPM_PREFIX/.auditstream-installed" want
    want="node=$(node --version) ${NPM_PACKAGES[*]}"
    if stamp_matches "$stamp" "$want" && [[ -f "$NPM_PREFIX/node_modules/azurite/dist/src/blob/main.js" ]]; then
        return 0
    fi
    log "installing into .local/npm: ${NPM_PACKAGES[*]}"
    mkdir -p "$NPM_PREFIX"
    npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" </dev/null \
        || die "npm install of ${NPM_PACKAGES[*]} failed (the npm registry must be reachable); rerun to retry"
    printf '%s' "$want" >"$stamp"
}

ensure_rust_target() {
    if rustup target list --installed 2>/dev/null | grep -qx "$SAM_RUST_TARGET"; then
        return 0
    fi
    log "adding rust target $SAM_RUST_TARGET (sam build cross-compiles the functions for arm64)"
    rustup target add "$SAM_RUST_TARGET" </dev/null \
        || die "rustup target add $SAM_RUST_TARGET failed; sam build needs it"
}

# Several test runs may share one checkout (people or agents working side by side): the installs take a
# lock so that two runs never delete and rebuild the same venv under each other.
with_install_lock() {
    mkdir -p "$LOCAL" "$LOGS"
    local fd
    exec {fd}>"$LOCAL/.install.lock"
    if ! flock -n "$fd"; then
        log "waiting for another run's install to finish (lock .local/.install.lock)"
        flock "$fd"
    fi
    "$@"
    local status=$?
    exec {fd}>&-
    return $status
}

# The tools the Rust tests need (moto, the Python extended client, Azurite).
install_test_tools() {
    command -v python3 >/dev/null || die "python3 not found: the tests need Python 3.11 with venv and pip"
    command -v node >/dev/null || die "node not found: Azurite needs Node.js 20 and npm"
    with_install_lock _install_test_tools
}
_install_test_tools() {
    ensure_venv "$TEST_VENV" "${TEST_PY_REQUIREMENTS[@]}"
    ensure_npm_packages
}

# The tools the SAM checks need (sam, cargo-lambda with zig, the arm64 Rust target).
install_sam_tools() {
    with_install_lock _install_sam_tools
}
_install_sam_tools() {
    ensure_venv "$SAM_VENV" "${SAM_PY_REQUIREMENTS[@]}"
    ensure_rust_target
}

# cargo-fuzz, for scripts/fuzz. `cargo install --locked` builds it with the versions its release was tested
# with; the stamp is the binary's own answer to --version.
install_cargo_fuzz() {
    with_install_lock _install_cargo_fuzz
}
_install_cargo_fuzz() {
    local bin="$CARGO_FUZZ_ROOT/bin/cargo-fuzz"
    if [[ "$("$bin" --version 2>/dev/null)" == "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
        return 0
    fi
    log "installing into ${CARGO_FUZZ_ROOT#"$ROOT"/}: cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --quiet --locked --root "$CARGO_FUZZ_ROOT" --version "$CARGO_FUZZ_VERSION" cargo-fuzz </dev/null \
        || die "cargo install cargo-fuzz failed (crates.io must be reachable); rerun to retry"
}

# The reference peer's venv and s3s-fs, for scripts/bench. As for cargo-fuzz, the stamp is the binary's own
# answer to --version.
install_bench_tools() {
    command -v python3 >/dev/null || die "python3 not found: the benchmark's reference peer needs Python 3.11 with venv and pip"
    command -v node >/dev/null || die "node not found: the benchmark's Azure Blob run needs Azurite, which needs Node.js 20 and npm"
    with_install_lock _install_bench_tools
}
_install_bench_tools() {
    ensure_venv "$BENCH_VENV" "${BENCH_PY_REQUIREMENTS[@]}"
    ensure_npm_packages
    if [[ "$("$CARGO_FUZZ_ROOT/bin/s3s-fs" --version 2>/dev/null)" == "s3s-fs $S3S_FS_VERSION" ]]; then
        return 0
    fi
    log "installing into ${CARGO_FUZZ_ROOT#"$ROOT"/}: s3s-fs $S3S_FS_VERSION (a few minutes, once)"
    cargo install --quiet --locked --root "$CARGO_FUZZ_ROOT" --version "$S3S_FS_VERSION" --features binary s3s-fs </dev/null \
        || die "cargo install s3s-fs failed (crates.io must be reachable); rerun to retry"
}

# ---------------------------------------------------------------------------------------------------------
# Services
#
# An "instance" is one set of running services with its state directory: pid files, ports and an env file
# of exports. scripts/services uses .local/run/dev; scripts/test uses its own, so a test run never stops (or
# clashes with) the services a developer started by hand.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http_answers URL: true when something answers HTTP at URL (any status: an error page is an answer).
http_answers() {
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
PY
}

# pid_is NAME PIDFILE PATTERN: true when the pid in PIDFILE is alive and its command line contains PATTERN
# (so a stale pid file never makes us signal some unrelated process that reused the pid).
pid_is() {
    local pidfile="$1" pattern="$2" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# start_service STATE NAME PATTERN URL_PATH CMD...: start CMD (containing the placeholder PORT) on a free
# loopback port, wait until it answers HTTP, and record pid and port in STATE. Prints the port.
start_service() {
    local state="$1" name="$2" pattern="$3" url_path="$4"; shift 4
    # Logs are named after the state directory less a trailing -PID (scripts/test's), so repeated runs
    # overwrite one set of logs instead of piling up.
    local logfile attempt port pid deadline args
    logfile="$LOGS/$(basename "$state" | sed -E 's/-[0-9]+$//')-$name.log"
    for attempt in 1 2 3; do
        port="$(free_port)"
        args=("${@//PORT/$port}")
        # nohup + no stdin: the service must survive the terminal of `scripts/services start` and must not
        # read the test run's stdin. Background jobs of a non-interactive shell ignore SIGINT, so a Ctrl-C
        # reaches the script's trap, which stops them.
        # Run from .local/ so that whatever a service writes to its working directory stays git-ignored.
        (cd "$LOCAL" && exec nohup "${args[@]}" >"$logfile" 2>&1 </dev/null) &
        pid=$!
        echo "$pid" >"$state/$name.pid"
        echo "$port" >"$state/$name.port"
        deadline=$((SECONDS + 60))
        while ((SECONDS < deadline)); do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            if http_answers "http://127.0.0.1:$port$url_path"; then
                log "$name is up on 127.0.0.1:$port (pid $pid, log ${logfile#"$ROOT"/})"
                echo "$port"
                return 0
            fi
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            stop_pid "$name" "$state/$name.pid" "$pattern"
            log "$name did not answer on 127.0.0.1:$port within 60 s; last lines of ${logfile#"$ROOT"/}:"
            tail -n 20 "$logfile" >&2 || true
            return 1
        fi
        # The process died: most likely someone took the port between free_port and bind. Try a new port.
        log "$name exited at start (attempt $attempt); last lines of ${logfile#"$ROOT"/}:"
        tail -n 20 "$logfile" >&2 || true
        rm -f "$state/$name.pid" "$state/$name.port"
    done
    return 1
}

stop_pid() {
    local name="$1" pidfile="$2" pattern="$3" pid i
    if pid_is "$pidfile" "$pattern"; then
        pid="$(cat "$pidfile")"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Patterns that identify our processes in /proc/PID/cmdline.
MOTO_PATTERN="$TEST_VENV/bin/moto_server"
AZURITE_PATTERN="$NPM_PREFIX/node_modules/azurite/dist/src/blob/main.js"

# services_start STATE: start moto (S3 + SQS on one port) and Azurite blob; write STATE/env.
services_start() {
    local state="$1" moto_port azurite_port
    mkdir -p "$state" "$LOGS"
    moto_port="$(start_service "$state" moto "$MOTO_PATTERN" /moto-api/ \
        "$TEST_VENV/bin/moto_server" -H 127.0.0.1 -p PORT)" \
        || { services_stop "$state"; die "moto server did not start"; }
    azurite_port="$(start_service "$state" azurite "$AZURITE_PATTERN" /devstoreaccount1 \
        node "$AZURITE_PATTERN" --blobHost 127.0.0.1 --blobPort PORT --inMemoryPersistence \
        --skipApiVersionCheck --disableTelemetry --loose)" \
        || { services_stop "$state"; die "Azurite did not start"; }
    cat >"$state/env" <<EOF
export AUDITSTREAM_TEST_MOTO_ENDPOINT=http://127.0.0.1:$moto_port
export AUDITSTREAM_TEST_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$azurite_port/devstoreaccount1
export AUDITSTREAM_TEST_PYTHON=$TEST_VENV/bin/python
export AUDITSTREAM_TEST_CARGO_LAMBDA=$SAM_VENV/bin/cargo-lambda
EOF
}

services_stop() {
    local state="$1"
    [[ -d "$state" ]] || return 0
    stop_pid azurite "$state/azurite.pid" "$AZURITE_PATTERN"
    stop_pid moto "$state/moto.pid" "$MOTO_PATTERN"
    rm -f "$state/env" "$state"/*.port
    rmdir "$state" 2>/dev/null || true
}

# services_running STATE: true when every service of STATE is alive and answering.
services_running() {
    local state="$1"
    [[ -f "$state/env" ]] || return 1
    pid_is "$state/moto.pid" "$MOTO_PATTERN" && pid_is "$state/azurite.pid" "$AZURITE_PATTERN" || return 1
    http_answers "http://127.0.0.1:$(cat "$state/moto.port")/moto-api/" \
        && http_answers "http://127.0.0.1:$(cat "$state/azurite.port")/devstoreaccount1"
}
