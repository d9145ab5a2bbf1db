# Sourced by scripts/test.sh, sandbox.sh and package.sh (not run on its own): finds cargo
# and decides who builds.
#
# The scripts run as root (network namespaces, dpkg), usually through sudo by a user whose
# Rust toolchain is a per-user rustup in ~/.cargo and ~/.rustup. A bare `cargo` under sudo
# is not on root's PATH, and root's cargo (rustup's proxy) would not find the user's
# toolchain; building as root would also leave a root-owned target/ in the user's tree.
# So, under sudo by a non-root user whose cargo is found, every cargo command runs as that
# user (`run_cargo ARGS…`) and target/ stays theirs; only what needs root (the tests'
# binaries, dpkg) runs as root. Run as root directly (CI), everything runs as root.
#
# Sets: CARGO_BIN (the cargo found), BUILD_USER (who builds: $SUDO_USER or root),
# BUILD_HOME (their home), TARGET_DIR (absolute: $CARGO_TARGET_DIR or <repo>/target).

# REPO must be set by the caller.
: "${REPO:?REPO must be set before sourcing cargo-env.sh}"

cargo_env_die() { printf '%s\n' "$*" >&2; exit 1; }

# The invoking user when run through sudo by someone else than root, else root. The user
# builds when they have a cargo of their own (~/.cargo/bin) or there is a system-wide one
# (Debian's cargo package); otherwise root's cargo builds (and target/ becomes root's).
BUILD_USER=root
BUILD_HOME="${HOME:-/root}"
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    _home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    if [ -n "$_home" ] && { [ -x "$_home/.cargo/bin/cargo" ] || [ -x /usr/bin/cargo ]; }; then
        BUILD_USER="$SUDO_USER"
        BUILD_HOME="$_home"
    fi
    unset _home
fi

# The cargo to run: on PATH, else the builder's (or root's) ~/.cargo/bin/cargo.
find_cargo() {
    local home
    if [ "$BUILD_USER" != root ]; then
        if [ -x "$BUILD_HOME/.cargo/bin/cargo" ]; then echo "$BUILD_HOME/.cargo/bin/cargo"; else echo /usr/bin/cargo; fi
        return
    fi
    if command -v cargo >/dev/null 2>&1; then
        command -v cargo
        return
    fi
    for home in "${HOME:-/root}" /root; do
        if [ -x "$home/.cargo/bin/cargo" ]; then
            echo "$home/.cargo/bin/cargo"
            return
        fi
    done
    cargo_env_die "cargo not found: install Rust (https://rustup.rs) as the user who runs sudo, or as root"
}
CARGO_BIN="$(find_cargo)"

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac

# `run_cargo ARGS…`: cargo ARGS… in the repository, as BUILD_USER (whose PATH gets the
# cargo's directory, so rustup's proxies and cargo's subcommands are found).
run_cargo() {
    local bindir
    bindir="$(dirname "$CARGO_BIN")"
    if [ "$BUILD_USER" != root ]; then
        (cd "$REPO" && sudo -u "$BUILD_USER" -H env "PATH=$bindir:$PATH" "CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}" \
            ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} "$CARGO_BIN" "$@")
    else
        (cd "$REPO" && env "PATH=$bindir:$PATH" "$CARGO_BIN" "$@")
    fi
}

# A line saying who builds where (printed by the scripts before the first build).
describe_build() {
    if [ "$BUILD_USER" != root ]; then
        echo "cargo ($CARGO_BIN) runs as $BUILD_USER; target dir $TARGET_DIR stays $BUILD_USER's"
    else
        echo "cargo ($CARGO_BIN) runs as root; target dir $TARGET_DIR"
    fi
}

# `as_builder CMD…`: CMD… as BUILD_USER (files it makes in the tree stay theirs).
as_builder() {
    if [ "$BUILD_USER" != root ]; then
        sudo -u "$BUILD_USER" -H "$@"
    else
        "$@"
    fi
}
