#!/usr/bin/env bash
# Installs the system packages mmm-rs's build, tests, sandbox and packages need (Debian/Ubuntu,
# as root); does nothing for what is already there:
# - a C toolchain (gcc, make, libc6-dev: the ring crate compiles C) and pkg-config;
# - MariaDB server and client: the testbed starts its own servers from them;
# - iproute2 and util-linux (network namespaces), openssl (test certificates), jq (test.sh);
# - dpkg-dev, lintian, systemd (systemd-analyze) and logrotate: the package build and tests;
# - prometheus (for its promtool) and chromium: tests/tests/http.rs validates the monitor's
#   /metrics with `promtool check metrics` and loads its status page in headless chromium;
# - protobuf-compiler (protoc: the etcd client crate compiles etcd's protobufs) and
#   etcd-server/etcd-client (tests/tests/ha.rs runs a three-member etcd cluster);
# - openssh-server and mariadb-backup: tests/tests/tools.rs runs sshd inside the testbed's
#   hosts (its own config and keys) and the tools' hot backups (mariadb-backup, mbstream);
# - rdiff-backup and lvm2: the same test's incremental backups (2.2.1's `rdiff` copy
#   method) and its LVM snapshot back-end on a loop device (run where the kernel has
#   device-mapper, skipped with the reason where it has not).
#
# Installing mariadb-server normally starts and enables Debian's own MariaDB on port 3306
# (prometheus its server on port 9090, etcd-server a member on 2379, openssh-server the
# system's sshd on port 22). Nothing here needs them, so this script keeps
# them from starting while it installs (a policy-rc.d that refuses service starts, removed
# afterwards) and disables them at boot, only when this script installed them. A MariaDB or
# Prometheus that was already installed is left as it was.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: must run as root (the testbed creates network namespaces)" >&2
    exit 1
fi
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc && have make && [ -e /usr/include/stdio.h ] || missing+=(gcc make libc6-dev)
have pkg-config || have pkgconf || missing+=(pkg-config)
installing_server=0
if ! have mariadbd && [ ! -x /usr/sbin/mariadbd ]; then
    missing+=(mariadb-server)
    installing_server=1
fi
have mariadb || missing+=(mariadb-client)
have ip || missing+=(iproute2)
have unshare || missing+=(util-linux)
have openssl || missing+=(openssl)
have jq || missing+=(jq)
have dpkg-shlibdeps || missing+=(dpkg-dev)
have lintian || missing+=(lintian)
have systemd-analyze || missing+=(systemd)
have logrotate || missing+=(logrotate)
installing_prometheus=0
if ! have promtool; then
    missing+=(prometheus)
    installing_prometheus=1
fi
have chromium || missing+=(chromium)
have protoc || missing+=(protobuf-compiler)
installing_etcd=0
if ! have etcd; then
    missing+=(etcd-server)
    installing_etcd=1
fi
have etcdctl || missing+=(etcd-client)
installing_sshd=0
if [ ! -x /usr/sbin/sshd ]; then
    missing+=(openssh-server)
    installing_sshd=1
fi
have mariadb-backup || missing+=(mariadb-backup)
have rdiff-backup || missing+=(rdiff-backup)
have lvcreate || [ -x /usr/sbin/lvcreate ] || missing+=(lvm2)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
saved=""
no_starts=0
if [ "$installing_server" = 1 ] || [ "$installing_prometheus" = 1 ] || [ "$installing_etcd" = 1 ] || [ "$installing_sshd" = 1 ]; then
    no_starts=1
fi
if [ "$no_starts" = 1 ]; then
    # Refuse every service start during the install (exit 101: "action forbidden"),
    # keeping a policy-rc.d that was there before (containers often have one).
    if [ -e "$policy" ]; then
        saved="$(mktemp)"
        cp -p "$policy" "$saved"
    fi
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
fi
restore_policy() {
    if [ "$no_starts" = 1 ]; then
        if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    fi
}
trap restore_policy EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# What this script installed is not started (policy-rc.d above) and not started at boot.
disable_at_boot() { # SERVICE
    if [ -d /run/systemd/system ]; then
        systemctl disable --quiet "$1.service" 2>/dev/null || true
    elif have update-rc.d; then
        update-rc.d "$1" disable >/dev/null 2>&1 || true
    fi
}
if [ "$installing_server" = 1 ]; then
    disable_at_boot mariadb
    echo "deps.sh: installed mariadb-server without starting it, and disabled it at boot (the tests start their own servers)"
fi
if [ "$installing_prometheus" = 1 ]; then
    disable_at_boot prometheus
    echo "deps.sh: installed prometheus (for promtool) without starting its server, and disabled it at boot"
fi
if [ "$installing_etcd" = 1 ]; then
    disable_at_boot etcd
    echo "deps.sh: installed etcd-server without starting it, and disabled it at boot (the tests start their own members)"
fi
if [ "$installing_sshd" = 1 ]; then
    disable_at_boot ssh
    echo "deps.sh: installed openssh-server without starting the system's sshd, and disabled it at boot (the tools' tests start their own)"
fi
