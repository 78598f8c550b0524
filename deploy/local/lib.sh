# shellcheck shell=bash disable=SC2034 # variables are used by the scripts sourcing this
# Shared helpers for the orderstream local deployment scripts.
# Sourced, never executed: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`.
#
# Everything the scripts create at run time lives under the checkout's
# `.local/` (data, logs, pid files) or under the per-user cache
# `${ORDERSTREAM_CACHE:-$HOME/.cache/orderstream}` (downloads, build output).

# ---------------------------------------------------------------- paths

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/../.." && pwd)"
# ORDERSTREAM_LOCAL_DIR moves it, for a throwaway stack beside the usual one (chaos --short).
LOCAL_DIR="${ORDERSTREAM_LOCAL_DIR:-$REPO_ROOT/.local}"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
# Some CI runners start scripts without HOME.
HOME="${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}"
export HOME
CACHE_DIR="${ORDERSTREAM_CACHE:-$HOME/.cache/orderstream}"

export DATABASE_URL="${DATABASE_URL:-postgres://orderstream:orderstream@127.0.0.1:5432/orderstream}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/target}"

mkdir -p "$LOG_DIR" "$RUN_DIR"

# -------------------------------------------------------------- logging

LOG_PREFIX="orderstream:$(basename "$0")"

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$*" >&2
    exit 1
}

# Prints the last lines of a log file to stderr (used when something fails).
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -s "$file" ]]; then
        printf '[%s] --- last %s lines of %s ---\n' "$LOG_PREFIX" "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf '[%s] ---\n' "$LOG_PREFIX" >&2
    fi
}

# ------------------------------------------------------------- waiting

# wait_until <deadline-seconds> <description> <command...>
# Runs the command every second until it succeeds; dies once the deadline
# has passed, showing the command's last output and, if WAIT_FAILURE_LOG
# names a file, the end of that file. A command may return 99 to give up
# at once (e.g. the process it waits for has died).
wait_until() {
    local deadline="$1" what="$2"
    shift 2
    local start=$SECONDS rc out="$RUN_DIR/wait_until.out"
    while true; do
        rc=0
        "$@" >"$out" 2>&1 || rc=$?
        if ((rc == 0)); then
            return 0
        fi
        if ((rc == 99)) || ((SECONDS - start >= deadline)); then
            show_log_tail "$out" 15
            [[ -n "${WAIT_FAILURE_LOG:-}" ]] && show_log_tail "$WAIT_FAILURE_LOG"
            if ((rc == 99)); then
                die "gave up waiting for $what"
            fi
            die "timed out after ${deadline}s waiting for $what"
        fi
        sleep 1
    done
}

# ---------------------------------------------------------- privileges

# Runs a command as root: directly when already root, else through sudo.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Runs a command as another OS user (from /, so it can always cd there).
as_user() {
    local user="$1"
    shift
    if [[ "$(id -un)" == "$user" ]]; then
        (cd / && "$@")
    elif ((EUID == 0)); then
        (cd / && runuser -u "$user" -- "$@")
    elif command -v sudo >/dev/null 2>&1; then
        (cd / && sudo -n -u "$user" -- "$@")
    else
        die "need root (or sudo) to run as $user: $*"
    fi
}

# ------------------------------------------------------------- packages

_apt_updated=""

# ensure_debian_packages pkg...
# Installs the listed Debian packages that are not installed yet. Does
# nothing (and needs no network) when all of them are present.
ensure_debian_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing Debian packages: ${missing[*]}"
    if [[ -z "$_apt_updated" ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
        _apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" </dev/null >/dev/null
}

# ensure_command <command> <debian-package>
# Installs the package only when the command is not found at all (tools
# such as java or mvn may come from outside Debian's packages).
ensure_command() {
    command -v "$1" >/dev/null 2>&1 || ensure_debian_packages "$2"
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found even after installing $2"
}

# ensure_chromium: the headless browser and its WebDriver that the console's browser test
# drives (system-tests, `console_in_a_browser`); Debian's, so both come at matching versions.
ensure_chromium() {
    ensure_debian_packages chromium chromium-driver
}

# ensure_cargo: puts rustup's cargo on PATH when it is not there yet.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found (install the Rust toolchain with rustup)"
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 && rustup component add rustfmt clippy >/dev/null 2>&1 ||
            die "cargo fmt and cargo clippy are needed (rustup component add rustfmt clippy)"
    fi
}

# ensure_cargo_deny: puts cargo-deny on PATH, building it from crates.io into the cache the
# first time (a few minutes; kept across runs). Warns and fails when it cannot.
CARGO_TOOLS_DIR="$CACHE_DIR/cargo-tools"
ensure_cargo_deny() {
    export PATH="$CARGO_TOOLS_DIR/bin:$PATH"
    cargo deny --version >/dev/null 2>&1 && return 0
    log "installing cargo-deny into $CARGO_TOOLS_DIR (once)"
    # Its own build directory, so the workspace's build lock is not held meanwhile.
    env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-deny --root "$CARGO_TOOLS_DIR" </dev/null || {
        warn "cannot install cargo-deny (cargo install --locked cargo-deny)"
        return 1
    }
}

# ensure_prometheus: Prometheus and its promtool (one Debian package), for
# deploy/local/prometheus and the checks of deploy/prometheus/. Debian's package
# would start a system-wide Prometheus on :9090 where services may start (the port
# deploy/local/prometheus takes); where it did, that one is stopped.
ensure_prometheus() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
    ensure_debian_packages prometheus
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    command -v promtool >/dev/null 2>&1 || die "promtool not found even after installing prometheus"
}

# ------------------------------------------------------------- Go tools

# ensure_go: puts the Go toolchain on PATH (the machine's, which may sit outside PATH).
ensure_go() {
    if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
        export PATH="/usr/local/go/bin:$PATH"
    fi
    command -v go >/dev/null 2>&1 || ensure_debian_packages golang-go
}

# ensure_deploy_check: prints the path of the deployment files' checker (deploy/check), built
# from the Go module proxy into the cache the first time and again only when its source changes.
ensure_deploy_check() {
    local source="$REPO_ROOT/deploy/check" key binary
    key="$(cat "$source"/go.mod "$source"/go.sum "$source"/*.go | sha256sum | cut -c1-16)"
    binary="$CACHE_DIR/deploy-check/$key/check"
    if [[ ! -x "$binary" ]]; then
        ensure_go
        log "building the deployment checker (deploy/check; once per change of its source)" >&2
        (cd "$source" && go build -trimpath -o "$binary" . </dev/null) >&2 ||
            die "cannot build deploy/check"
    fi
    printf '%s\n' "$binary"
}

# Jaeger v2 (the OpenTelemetry-collector-based line, still numbered 1.x), built from its Go
# module into the cache: no prebuilt download. JAEGER_BIN points at another build.
JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
JAEGER_DIR="$CACHE_DIR/jaeger-$JAEGER_VERSION"
JAEGER_BIN="${JAEGER_BIN:-$JAEGER_DIR/bin/jaeger}"

# ensure_jaeger: builds the `jaeger` binary into $JAEGER_DIR the first time (minutes on two
# cores; kept across runs). Jaeger's own go.mod has a replace directive, which `go install
# module@version` refuses, so it is built as a tool of a throwaway module that repeats it.
ensure_jaeger() {
    [[ -x "$JAEGER_BIN" ]] && return 0
    ensure_go
    mkdir -p "$JAEGER_DIR"
    # Tests started at once may all ask: one builds, the others wait for its binary.
    local lock
    exec {lock}>"$JAEGER_DIR/build.lock"
    flock "$lock"
    if [[ -x "$JAEGER_BIN" ]]; then
        exec {lock}>&-
        return 0
    fi
    log "building Jaeger $JAEGER_VERSION into $JAEGER_DIR (once, a few minutes)"
    local module="$JAEGER_DIR/module" build_log="$JAEGER_DIR/build.log"
    mkdir -p "$module" "$(dirname "$JAEGER_BIN")"
    cat >"$module/go.mod" <<GOMOD
module orderstream.local/jaeger

go 1.24

replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
GOMOD
    rm -f "$module/go.sum"
    if ! (cd "$module" &&
        GOFLAGS=-buildvcs=false go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
        GOFLAGS="-buildvcs=false -trimpath" go build -o "$JAEGER_BIN.partial" \
            github.com/jaegertracing/jaeger/cmd/jaeger) </dev/null >"$build_log" 2>&1; then
        show_log_tail "$build_log"
        die "building Jaeger $JAEGER_VERSION failed"
    fi
    mv "$JAEGER_BIN.partial" "$JAEGER_BIN"
    exec {lock}>&-
}

# ------------------------------------------------------------ processes

pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }

# pid_of <name> <cmdline-pattern>
# Prints the pid recorded for <name> if that process is alive and its
# command line contains <cmdline-pattern> (guards against reused pids).
pid_of() {
    local name="$1" pattern="$2" file pid
    file="$(pid_file "$name")"
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
    printf '%s\n' "$pid"
}

# is_running <name> <cmdline-pattern>
is_running() { pid_of "$@" >/dev/null; }

# start_daemon <name> <log-file> <command...>
# Starts the command detached (own session, no stdin, output appended to
# the log file) and records its pid in .local/run/<name>.pid. The pid file
# is written by the process itself right before it execs the command, so
# it is always the pid of the command.
start_daemon() {
    local name="$1" logfile="$2"
    shift 2
    local file
    file="$(pid_file "$name")"
    rm -f "$file"
    printf '\n===== %s starting %s =====\n' "$(date -Is)" "$name" >>"$logfile"
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$file" "$@" </dev/null >>"$logfile" 2>&1 &
    local _
    for _ in {1..50}; do
        [[ -s "$file" ]] && return 0
        sleep 0.1
    done
    die "$name did not start (see $logfile)"
}

# stop_daemon <name> <cmdline-pattern> [deadline-seconds]
# SIGTERM, wait up to the deadline, then SIGKILL. Quiet when not running.
stop_daemon() {
    local name="$1" pattern="$2" deadline="${3:-30}" pid start
    if ! pid="$(pid_of "$name" "$pattern")"; then
        rm -f "$(pid_file "$name")"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS - start >= deadline)); then
            warn "$name did not stop within ${deadline}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
    rm -f "$(pid_file "$name")"
}

# ---------------------------------------------------------------- Kafka

KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_CONF_DIR="$DEPLOY_DIR/kafka"
# The version is the one pinned in kafka/pom.xml unless KAFKA_VERSION says.
KAFKA_VERSION="${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_CONF_DIR/pom.xml")}"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_STATE_DIR="$LOCAL_DIR/kafka"

# kafka_tool <main-class> <args...>: runs a Kafka command-line tool (e.g.
# org.apache.kafka.tools.TopicCommand) from the local Kafka's classpath,
# killed after KAFKA_TOOL_TIMEOUT seconds when that is set.
kafka_tool() {
    [[ -f "$KAFKA_HOME/.complete" ]] || die "Kafka $KAFKA_VERSION is not downloaded yet: run deploy/local/infra"
    timeout "${KAFKA_TOOL_TIMEOUT:-0}" java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/tools-log4j2.yaml" \
        -cp "$KAFKA_LIB/*" "$@"
}

# tcp_open <host> <port>: true when something accepts connections there.
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# -------------------------------------------------------------- cluster

# The ports of `deploy/local/up --cluster`, one per replica, space-separated; each list can be
# overridden (e.g. to run a second cluster beside the default one). Kafka's controller ports
# differ from the single node's 9093, which the cluster's second broker takes.
CLUSTER_KAFKA_PORTS="${CLUSTER_KAFKA_PORTS:-9092 9093 9094}"
CLUSTER_CONTROLLER_PORTS="${CLUSTER_CONTROLLER_PORTS:-9192 9193 9194}"
CLUSTER_COMMAND_API_PORTS="${CLUSTER_COMMAND_API_PORTS:-8084 8094}"
CLUSTER_QUERY_API_PORTS="${CLUSTER_QUERY_API_PORTS:-8085 8095}"
CLUSTER_PROJECTORS_PORTS="${CLUSTER_PROJECTORS_PORTS:-8086 8096}"
CLUSTER_STATE_DIR="$LOCAL_DIR/kafka-cluster"

# cluster_brokers: the cluster's bootstrap list, "127.0.0.1:9092,127.0.0.1:9093,…".
cluster_brokers() {
    local port list=()
    for port in $CLUSTER_KAFKA_PORTS; do
        list+=("$KAFKA_HOST:$port")
    done
    (IFS=,; printf '%s\n' "${list[*]}")
}

# ------------------------------------------------------------- secrets

# load_local_secrets: exports JWT_SECRET and CARD_FINGERPRINT_KEY from .local/secrets.env
# (git-ignored), generating them the first time: the HS256 key tokens are signed and checked
# with, and the key of the card fingerprints.
LOCAL_SECRETS="$LOCAL_DIR/secrets.env"
load_local_secrets() {
    local secrets="$LOCAL_SECRETS"
    if [[ ! -s "$secrets" ]]; then
        log "generating local secrets in $secrets"
        (
            umask 077
            printf 'JWT_SECRET=%s\n' "$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" >"$secrets"
            printf 'CARD_FINGERPRINT_KEY=%s\n' "$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" >>"$secrets"
        )
    fi
    set -a
    # shellcheck source=/dev/null
    source "$secrets"
    set +a
}
