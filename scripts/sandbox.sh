#!/usr/bin/env bash
# The README's sandbox: the seed's five-host MMM deployment on this machine (issue 6).
#
#   sudo bash scripts/sandbox.sh [up]          build, start everything, wait until healthy, print `mmm_control show`
#   sudo bash scripts/sandbox.sh down          remove everything it made (namespaces, processes, files)
#   sudo bash scripts/sandbox.sh control ARGS  mmm_control ARGS on the monitor host (show, checks all, move_role writer db2…)
#   sudo bash scripts/sandbox.sh exec HOST CMD…  any command on a host (db1..db4, monitor); `exec db1 bash` for a shell
#   sudo bash scripts/sandbox.sh sql HOST 'SQL'  SQL as root on a host's MariaDB server
#   sudo bash scripts/sandbox.sh fault OP HOST   stop|start|kill9|freeze|thaw (the server), cut|restore (the link),
#                                                limit|unlimit (its inbound rate: fault limit HOST KBIT, tc tbf),
#                                                break|repair|delay SECS|undelay (replication): see docs/testbed.md
#   sudo bash scripts/sandbox.sh status        where things are (testbed, daemons, logs)
#
# Hosts live in network namespaces joined by a bridge (docs/testbed.md): db1 198.18.2.100 and
# db2 .102 (masters), db3 .103 and db4 .105 (slaves of db1), monitor .106; writer VIP .188,
# reader VIPs .198 and .199. Each host sees its own /etc/mysql-mmm, /run, /var/lib/misc and
# /var/log/mysql-mmm (directories under the testbed's /tmp/mtXXXXXX/HOST/). The configs are
# the repository's etc/mysql-mmm with the sandbox's addresses. Nothing in the root network
# namespace is touched. `up` is idempotent (on a running sandbox it starts or thaws servers a
# fault left down, restarts missing daemons and sets hosts waiting for recovery online);
# `down` also cleans up after an interrupted `up`.
# docs/operations.md walks through a failover by hand.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${MMM_SANDBOX_DIR:-/tmp/mmm-sandbox}"
SUBNET=2
NET="198.18.$SUBNET"
HOSTS=(db1 db2 db3 db4)
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET" in /*) ;; *) TARGET="$REPO/$TARGET" ;; esac
BIN="$TARGET/debug"
TESTBED="$BIN/mmm-testbed"
HEALTHY_TIMEOUT="${MMM_SANDBOX_TIMEOUT:-120}"

say() { printf 'sandbox: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces): sudo bash scripts/sandbox.sh ${1:-up}"
}

# The testbed directory of the running sandbox, or nothing.
base_dir() {
    local p="$STATE_DIR/current"
    [ -f "$p" ] || return 0
    local d
    d="$(cat "$p")"
    [ -d "$d" ] && printf '%s\n' "$d"
    return 0
}

need_up() {
    [ -x "$TESTBED" ] || die "not built: $TESTBED missing (run: sudo bash scripts/sandbox.sh up)"
    [ -n "$(base_dir)" ] || die "the sandbox is not up (run: sudo bash scripts/sandbox.sh up)"
}

on_host() { # HOST CMD…
    local host="$1"
    shift
    "$TESTBED" exec --state-dir "$STATE_DIR" "$host" -- "$@"
}

control() { # mmm_control ARGS… on the monitor host
    on_host monitor "$BIN/mmm_control" "$@"
}

build() {
    if [ "${MMM_SANDBOX_NO_BUILD:-0}" = 1 ]; then
        say "MMM_SANDBOX_NO_BUILD=1: not building"
    else
        # shellcheck source=scripts/cargo-env.sh
        . "$REPO/scripts/cargo-env.sh"
        say "building (cargo build --bins): $(describe_build)"
        run_cargo build --bins || die "cargo build failed (as $BUILD_USER)"
    fi
    local b
    for b in mmm_mond mmm_agentd mmm_control mmm-testbed; do
        [ -x "$BIN/$b" ] || die "missing $BIN/$b after the build"
    done
}

# The repository's sample configs with the sandbox's addresses, into each host's
# /etc/mysql-mmm (mode 0640, as MMM requires).
write_configs() {
    local base="$1" h etc
    for h in "${HOSTS[@]}" monitor; do
        etc="$base/$h/etc/mysql-mmm"
        sed "s/192\.168\.2\./$NET./g" "$REPO/etc/mysql-mmm/mmm_common.conf" >"$etc/mmm_common.conf"
        chmod 0640 "$etc/mmm_common.conf"
    done
    for h in "${HOSTS[@]}"; do
        etc="$base/$h/etc/mysql-mmm"
        sed -e "s/192\.168\.2\./$NET./g" -e "s/^this .*/this $h/" \
            "$REPO/etc/mysql-mmm/mmm_agent.conf" >"$etc/mmm_agent.conf"
        chmod 0640 "$etc/mmm_agent.conf"
    done
    etc="$base/monitor/etc/mysql-mmm"
    sed "s/192\.168\.2\./$NET./g" "$REPO/etc/mysql-mmm/mmm_mon.conf" >"$etc/mmm_mon.conf"
    chmod 0640 "$etc/mmm_mon.conf"
}

# Whether the daemon whose pid file is FILE (inside the host's run/) runs.
daemon_running() {
    local file="$1" pid
    [ -f "$file" ] || return 1
    pid="$(tr -dc 0-9 <"$file")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# On a running sandbox: starts the servers a `fault stop`/`kill9` left down and thaws the
# ones a `fault freeze` left stopped, so `up` brings the sandbox back to health.
restore_servers() {
    local base="$1" h pid
    for h in "${HOSTS[@]}"; do
        if daemon_running "$base/$h/run/mysqld/mysqld.pid"; then
            pid="$(tr -dc 0-9 <"$base/$h/run/mysqld/mysqld.pid")"
            if grep -q '^State:[[:space:]]*T' "/proc/$pid/status" 2>/dev/null; then
                say "thawing $h's server"
                "$TESTBED" fault --state-dir "$STATE_DIR" thaw "$h"
            fi
        else
            say "starting $h's server"
            "$TESTBED" fault --state-dir "$STATE_DIR" start "$h"
        fi
    done
}

# Starts the agents and the monitor that do not run yet. They detach (as started by hand
# in 2.2.1: fork, setsid, stdio to /dev/null) and outlive this script; their logs are the
# hosts' /var/log/mysql-mmm/*.log.
start_daemons() {
    local base="$1" h
    for h in "${HOSTS[@]}"; do
        if daemon_running "$base/$h/run/mmm_agentd.pid"; then
            say "agent on $h already runs"
        else
            say "starting mmm_agentd on $h"
            on_host "$h" "$BIN/mmm_agentd" 2>>"$STATE_DIR/daemons.err" \
                || die "mmm_agentd on $h failed to start (see $STATE_DIR/daemons.err and $base/$h/var/log/mysql-mmm/)"
        fi
    done
    if daemon_running "$base/monitor/run/mmm_mond.pid"; then
        say "monitor already runs"
    else
        say "starting mmm_mond on monitor"
        on_host monitor "$BIN/mmm_mond" 2>>"$STATE_DIR/daemons.err" \
            || die "mmm_mond failed to start (see $STATE_DIR/daemons.err and $base/monitor/var/log/mysql-mmm/)"
    fi
}

# Waits until the monitor answers, sets every host waiting for recovery online (as the
# seed's admin does), and waits until every host is ONLINE and the writer is assigned.
wait_healthy() {
    local deadline=$((SECONDS + HEALTHY_TIMEOUT)) show h
    until [ "$(control ping 2>/dev/null)" = "OK: Pinged successfully!" ]; do
        [ $SECONDS -lt $deadline ] || die "the monitor does not answer (see $(base_dir)/monitor/var/log/mysql-mmm/)"
        sleep 0.5
    done
    while :; do
        show="$(control show 2>/dev/null || true)"
        for h in "${HOSTS[@]}"; do
            if grep -q "^  $h(.*/AWAITING_RECOVERY\." <<<"$show"; then
                # Refused while the first checks still fail; retried on the next round.
                control set_online "$h" >/dev/null 2>&1 || true
            fi
        done
        if [ "$(grep -c '/ONLINE\. Roles: ' <<<"$show")" = "${#HOSTS[@]}" ] && grep -q "writer($NET.188)" <<<"$show"; then
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            say "not healthy after ${HEALTHY_TIMEOUT}s; current state:"
            printf '%s\n' "$show" >&2
            return 1
        fi
        sleep 1
    done
}

cmd_up() {
    need_root up
    bash "$REPO/scripts/deps.sh"
    build
    mkdir -p "$STATE_DIR"
    local base d
    base="$(base_dir)"
    if [ -z "$base" ]; then
        rm -f "$STATE_DIR/current"
        # Remember which root-filesystem mount points the testbed creates, so `down` can
        # remove them again.
        for d in /etc/mysql-mmm /var/log/mysql-mmm /var/lib/misc; do
            if [ ! -e "$d" ] && ! grep -qxF "$d" "$STATE_DIR/created-dirs" 2>/dev/null; then
                echo "$d" >>"$STATE_DIR/created-dirs"
            fi
        done
        say "building the testbed on $NET.0/24"
        # In the background and its own session, so a Ctrl-C (or kill) of this script
        # cannot leave a half-built testbed: the build finishes, and `down` waits for it.
        setsid -w "$TESTBED" up --subnet "$SUBNET" --state-dir "$STATE_DIR" >"$STATE_DIR/topology.toml" &
        local builder=$!
        echo "$builder" >"$STATE_DIR/building.pid"
        wait "$builder" || die "mmm-testbed up failed"
        rm -f "$STATE_DIR/building.pid"
        base="$(base_dir)"
        [ -n "$base" ] || die "mmm-testbed up left no testbed"
        write_configs "$base"
    else
        say "the sandbox is already up ($base)"
        restore_servers "$base"
    fi
    start_daemons "$base"
    if ! wait_healthy; then
        die "see the logs under $base/*/var/log/mysql-mmm/; remove it all with: sudo bash scripts/sandbox.sh down"
    fi
    say "healthy. mmm_control show:"
    control show
    cat >&2 <<EOF
sandbox: try it:
    sudo bash scripts/sandbox.sh control checks all
    sudo bash scripts/sandbox.sh control move_role writer db2
    sudo bash scripts/sandbox.sh fault stop db1      # then: control show (writer moves to db2)
    sudo bash scripts/sandbox.sh down                # removes everything
  docs/operations.md has the whole walkthrough.
EOF
}

# Tears down testbeds on the sandbox's subnet whose owner died before handing them over (an
# `up` interrupted while the testbed was being built).
reap_interrupted() {
    local state id owner subnet ns pid d
    for state in /tmp/mt??????/testbed-state.toml; do
        [ -f "$state" ] || continue
        subnet="$(sed -n 's/^subnet = \([0-9]*\)$/\1/p' "$state")"
        owner="$(sed -n 's/^owner_pid = \([0-9]*\)$/\1/p' "$state")"
        [ "$subnet" = "$SUBNET" ] && [ -n "$owner" ] && [ "$owner" != 0 ] || continue
        kill -0 "$owner" 2>/dev/null && continue
        d="$(dirname "$state")"
        id="$(basename "$d")"
        say "removing testbed $id left by an interrupted up"
        for ns in $(ip netns list | awk '{print $1}' | grep "^$id-" || true); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        done
        for pid in $(sed -n 's/^[a-z0-9]* = \([0-9]*\)$/\1/p' "$state"); do
            if grep -qaF "$d" "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
        done
        sleep 0.5
        for ns in $(ip netns list | awk '{print $1}' | grep "^$id-" || true); do
            ip netns del "$ns" 2>/dev/null || true
        done
        rm -rf "$d"
    done
}

cmd_down() {
    need_root down
    local pid deadline=$((SECONDS + 300))
    if [ -f "$STATE_DIR/building.pid" ]; then
        pid="$(tr -dc 0-9 <"$STATE_DIR/building.pid")"
        while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            say "an interrupted up is still building the testbed (pid $pid); waiting for it"
            sleep 1
        done
        rm -f "$STATE_DIR/building.pid"
    fi
    if [ -f "$STATE_DIR/current" ]; then
        if [ -x "$TESTBED" ]; then
            # Kills every process on the hosts (servers, agents, monitor), deletes the
            # namespaces and the testbed's directory.
            "$TESTBED" down --state-dir "$STATE_DIR" || say "mmm-testbed down reported an error"
        else
            say "$TESTBED missing; cannot tear down $(cat "$STATE_DIR/current")"
        fi
    fi
    reap_interrupted
    # The mount points `up` created in the root filesystem, if no other testbed needs them.
    if [ -f "$STATE_DIR/created-dirs" ]; then
        if compgen -G "/tmp/mt??????" >/dev/null; then
            say "other testbeds run; leaving $(tr '\n' ' ' <"$STATE_DIR/created-dirs")"
        else
            while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$STATE_DIR/created-dirs"
        fi
    fi
    rm -f "$STATE_DIR/current" "$STATE_DIR/topology.toml" "$STATE_DIR/created-dirs" "$STATE_DIR/daemons.err"
    rmdir "$STATE_DIR" 2>/dev/null || true
    if [ -e "$STATE_DIR" ]; then
        say "left $STATE_DIR (not empty)"
    fi
    say "down"
}

cmd_status() {
    need_up
    local base h
    base="$(base_dir)"
    echo "testbed: $base (topology: $STATE_DIR/topology.toml)"
    for h in "${HOSTS[@]}"; do
        if daemon_running "$base/$h/run/mmm_agentd.pid"; then s=running; else s=stopped; fi
        echo "  $h: mmm_agentd $s; log $base/$h/var/log/mysql-mmm/mmm_agentd.log"
    done
    if daemon_running "$base/monitor/run/mmm_mond.pid"; then s=running; else s=stopped; fi
    echo "  monitor: mmm_mond $s; log $base/monitor/var/log/mysql-mmm/mmm_mond.log"
}

main() {
    local cmd="${1:-up}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        control) need_root control; need_up; control "$@" ;;
        exec) need_root exec; need_up; [ $# -ge 2 ] || die "usage: sandbox.sh exec HOST CMD…"; on_host "$@" ;;
        sql) need_root sql; need_up; "$TESTBED" sql --state-dir "$STATE_DIR" "$@" ;;
        fault) need_root fault; need_up; "$TESTBED" fault --state-dir "$STATE_DIR" "$@" ;;
        status) need_root status; cmd_status ;;
        -h | --help | help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
        *) die "unknown command '$cmd' (up, down, control, exec, sql, fault, status, help)" ;;
    esac
}

main "$@"
