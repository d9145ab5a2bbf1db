#!/usr/bin/env bash
# Installs the system packages mmm-rs's tests and sandbox need (Debian/Ubuntu, as root):
# MariaDB server and client (the real servers of the testbed) and iproute2 (network
# namespaces). Does nothing when they are already there.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: must run as root (the testbed creates network namespaces)" >&2
    exit 1
fi
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package's own service is not used: the testbed starts its own servers.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
