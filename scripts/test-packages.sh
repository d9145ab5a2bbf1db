#!/usr/bin/env bash
# Tests of the Debian packages, run by scripts/test.sh (as root, after the other tests):
#
# 1. build them: scripts/package.sh, a release build as shipped (about 5.5 min from scratch
#    on 2 cores; MMM_DEB_PROFILE=dev packages the debug build test.sh made instead, in
#    seconds);
# 2. lintian reports no error;
# 3. conffiles: /etc/mysql-mmm/*.conf (mmm_tools.conf included) are conffiles of mode 0640;
# 4. dpkg -i of the four packages: the installed programs answer --help and --version
#    (mmm_clone, mmm_backup, mmm_restore: --help prints 2.2.1's usage and exits 1) and have
#    a man page and bash/zsh/fish completions, the tools' ssh helpers are in
#    /usr/lib/mysql-mmm/tools/,
#    `systemd-analyze verify` of the installed units is clean, their `systemd-analyze
#    security` exposure is under 3.0, the logrotate snippet parses;
# 5. the seed's walkthrough (tests/tests/walkthrough.rs, seed_walkthrough) on the testbed
#    with the installed /usr/sbin binaries, each started as its unit would start it as far
#    as privileges go: with the unit's capability bounding set (agent CAP_NET_ADMIN +
#    CAP_NET_RAW, monitor CAP_NET_RAW, mmm_control none) and no_new_privs (setpriv
#    wrappers in MMM_BIN_DIR);
# 6. dpkg -P: nothing the packages installed or made is left (a file list of /etc, /usr,
#    /var and /opt before the install and after the purge).
#
#   sudo bash scripts/test-packages.sh
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test-packages.sh: must run as root (dpkg, the testbed)" >&2
    exit 1
fi
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh
PKGS=(mysql-mmm-agent mysql-mmm-monitor mysql-mmm-tools mysql-mmm-common)
OUT="$TARGET_DIR/debian"
work="$(mktemp -d)"
fails=0
passes=0
step() { printf '\n--- test-packages.sh: %s (%s)\n' "$*" "$(date +%T)"; }
ok() { printf 'ok: %s\n' "$*"; passes=$((passes + 1)); }
fail() { printf 'FAIL: %s\n' "$*" >&2; fails=$((fails + 1)); }
purge_all() { dpkg -P "${PKGS[@]}" >/dev/null 2>&1 || true; }
cleanup() {
    purge_all
    rm -rf "$work"
}
trap cleanup EXIT

step "build (scripts/package.sh, profile ${MMM_DEB_PROFILE:-release})"
t0=$SECONDS
MMM_DEB_PROFILE="${MMM_DEB_PROFILE:-release}" CARGO_DEB_QUIET=1 bash scripts/package.sh
echo "figure: package build $((SECONDS - t0)) s"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
deb_version="${version/-/+}-1"
debs=()
for p in "${PKGS[@]}"; do
    f="$(ls "$OUT/${p}_${deb_version}"_*.deb 2>/dev/null | head -1 || true)"
    if [ -n "$f" ]; then
        debs+=("$f")
        ok "built $(basename "$f")"
    else
        fail "no $OUT/${p}_${deb_version}_*.deb"
    fi
done
[ ${#debs[@]} = ${#PKGS[@]} ] || exit 1

step "lintian"
t0=$SECONDS
# lintian refuses to run as root without --allow-root on newer versions; bookworm's accepts it.
if lintian --fail-on error --no-tag-display-limit "${debs[@]}" 2>&1 | tee "$work/lintian"; then
    ok "lintian: no error ($(grep -c '^W:' "$work/lintian" || true) warnings)"
else
    fail "lintian reported errors"
fi
echo "figure: lintian $((SECONDS - t0)) s"

step "conffiles"
for f in "${debs[@]}"; do
    dpkg-deb --ctrl-tarfile "$f" | tar -xO ./conffiles 2>/dev/null >>"$work/conffiles" || true
    dpkg-deb -c "$f" >>"$work/contents"
done
for c in mmm_common.conf mmm_agent.conf mmm_mon.conf mmm_tools.conf; do
    if grep -qx "/etc/mysql-mmm/$c" "$work/conffiles" && grep -Eq "^-rw-r----- (root/root|0/0) .* \./etc/mysql-mmm/$c\$" "$work/contents"; then
        ok "/etc/mysql-mmm/$c is a conffile, mode 0640"
    else
        fail "/etc/mysql-mmm/$c: not a conffile of mode 0640"
        grep "mysql-mmm/$c" "$work/conffiles" "$work/contents" >&2 || true
    fi
done

# What exists before the install (after removing the packages, should an earlier run have
# left them).
snapshot() {
    find /etc /usr /var /opt -xdev \( -path /var/lib/dpkg -o -path /var/cache -o -path /var/tmp \
        -o -path /var/log/journal -o -path /var/lib/apt -o -path /var/log/apt \) -prune -o -print | sort
}
purge_all
snapshot >"$work/before"

step "dpkg -i"
if dpkg -i "${debs[@]}" >"$work/dpkg-i" 2>&1; then
    ok "dpkg -i"
else
    cat "$work/dpkg-i" >&2
    fail "dpkg -i"
    exit 1
fi
for b in mmm_agentd mmm_mond mmm_control mmm_tls; do
    if [ "$("/usr/sbin/$b" --version)" = "$b $version" ] && "/usr/sbin/$b" --help | grep -q "^Usage: $b"; then
        ok "/usr/sbin/$b --version, --help"
    else
        fail "/usr/sbin/$b --version/--help"
    fi
    if [ -f "/usr/share/man/man8/$b.8.gz" ] && [ -f "/usr/share/bash-completion/completions/$b" ] \
        && zcat "/usr/share/man/man8/$b.8.gz" | grep -q "^\.TH $b 8 " \
        && bash -c ". /usr/share/bash-completion/completions/$b && complete -p $b" >/dev/null; then
        ok "$b: man page and bash completion installed and loadable"
    else
        fail "$b: man page or completion missing or broken"
    fi
done
# The tools: 2.2.1's command lines have no --help option (Getopt::Long): it is a bad
# parameter, answered with the usage text and exit 1.
for b in mmm_clone mmm_backup mmm_restore; do
    help_rc=0
    help="$("/usr/sbin/$b" --help 2>&1)" || help_rc=$?
    if [ "$("/usr/sbin/$b" --version)" = "$b $version" ] && [ "$help_rc" = 1 ] \
        && grep -q "^Usage: /usr/sbin/$b \[--config <config file>\]" <<<"$help"; then
        ok "/usr/sbin/$b --version, --help (usage, exit 1)"
    else
        printf '%s\n(exit %s)\n' "$help" "$help_rc" >&2
        fail "/usr/sbin/$b --version/--help"
    fi
    if [ -f "/usr/share/man/man8/$b.8.gz" ] && zcat "/usr/share/man/man8/$b.8.gz" | grep -q "^\.TH $b 8 " \
        && bash -c ". /usr/share/bash-completion/completions/$b && complete -p $b" >/dev/null \
        && [ -f "/usr/share/zsh/vendor-completions/_$b" ] && [ -f "/usr/share/fish/vendor_completions.d/$b.fish" ]; then
        ok "$b: man page and bash/zsh/fish completions installed, bash's loadable"
    else
        fail "$b: man page or completion missing or broken"
    fi
done
for h in stream_backup create_snapshot remove_snapshot; do
    if [ -x "/usr/lib/mysql-mmm/tools/$h" ] && [ "$(stat -c %a "/usr/lib/mysql-mmm/tools/$h")" = 755 ]; then
        ok "/usr/lib/mysql-mmm/tools/$h installed (where the tools run it over ssh)"
    else
        fail "/usr/lib/mysql-mmm/tools/$h missing"
    fi
done
if [ "$(stat -c %a /etc/mysql-mmm/mmm_tools.conf)" = 640 ] && [ -f /usr/share/doc/mysql-mmm-tools/tools.md ]; then
    ok "/etc/mysql-mmm/mmm_tools.conf 0640, tools.md installed"
else
    fail "/etc/mysql-mmm/mmm_tools.conf mode or /usr/share/doc/mysql-mmm-tools/tools.md"
fi
units=()
for u in mysql-mmm-agent mysql-mmm-monitor; do
    f="$(ls /lib/systemd/system/$u.service /usr/lib/systemd/system/$u.service 2>/dev/null | head -1 || true)"
    if [ -z "$f" ]; then
        fail "$u.service not installed"
        continue
    fi
    units+=("$f")
    doc="$(sed -n 's/^Documentation=.*file:\([^ ]*\).*/\1/p' "$f")"
    if [ -n "$doc" ] && [ -f "$doc" ]; then ok "$u: Documentation= $doc installed"; else fail "$u: Documentation= '$doc' missing"; fi
done
if out="$(systemd-analyze verify "${units[@]}" 2>&1)" && [ -z "$out" ]; then
    ok "systemd-analyze verify: clean"
else
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify"
fi
for f in "${units[@]}"; do
    line="$(systemd-analyze security --offline=true "$f" 2>&1 | tail -1)"
    score="$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$line")"
    echo "figure: systemd-analyze security $(basename "$f"): $score"
    if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 3.0) }'; then
        ok "$(basename "$f") exposure $score < 3.0"
    else
        fail "$(basename "$f") exposure '$line'"
    fi
done
if logrotate -d /etc/logrotate.d/mysql-mmm >"$work/logrotate" 2>&1 && ! grep -qi "error" "$work/logrotate"; then
    ok "logrotate snippet parses"
else
    cat "$work/logrotate" >&2
    fail "logrotate -d /etc/logrotate.d/mysql-mmm"
fi
if [ -d /var/log/mysql-mmm ] && [ "$(stat -c %a /etc/mysql-mmm/mmm_agent.conf)" = 640 ]; then
    ok "/var/log/mysql-mmm made, configs 0640"
else
    fail "/var/log/mysql-mmm or config modes"
fi

step "the seed's walkthrough with the installed binaries, under the units' capability sets"
t0=$SECONDS
mkdir -p "$work/bin"
wrap() { # NAME CAPS: $work/bin/NAME runs /usr/sbin/NAME with only CAPS
    printf '#!/bin/sh\nexec setpriv --bounding-set=-all%s --inh-caps=-all --no-new-privs /usr/sbin/%s "$@"\n' "$2" "$1" >"$work/bin/$1"
    chmod 0755 "$work/bin/$1"
}
wrap mmm_agentd ",+net_admin,+net_raw"
wrap mmm_mond ",+net_raw"
wrap mmm_control ""
chmod 0755 "$work"
# The whole workspace, as test.sh builds it (the same features: nothing is rebuilt).
exe="$(run_cargo test --workspace --no-run --message-format=json \
    | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .target.name == "walkthrough")
             | .executable')"
if [ -n "$exe" ] && (cd "$REPO/tests" && MMM_BIN_DIR="$work/bin" "$exe" seed_walkthrough --exact --test-threads=1); then
    ok "seed walkthrough with the /usr/sbin binaries and the units' capabilities"
else
    fail "seed walkthrough with the /usr/sbin binaries and the units' capabilities"
fi
echo "figure: walkthrough with the installed binaries $((SECONDS - t0)) s"

step "dpkg -P"
if dpkg -P "${PKGS[@]}" >"$work/dpkg-p" 2>&1; then
    ok "dpkg -P"
else
    cat "$work/dpkg-p" >&2
    fail "dpkg -P"
fi
snapshot >"$work/after"
left="$(comm -13 "$work/before" "$work/after")"
if [ -z "$left" ]; then
    ok "nothing left after the purge"
else
    printf 'left behind:\n%s\n' "$left" >&2
    fail "the purge left files"
fi
gone="$(comm -23 "$work/before" "$work/after")"
[ -z "$gone" ] || printf 'note: gone after the purge (existed before the install):\n%s\n' "$gone"

printf '\ntest-packages.sh: %d passed, %d failed\n' "$passes" "$fails"
[ "$fails" = 0 ]
