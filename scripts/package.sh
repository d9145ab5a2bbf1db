#!/usr/bin/env bash
# The Debian packages: `bash scripts/package.sh` → target/debian/
#   mysql-mmm-common_<v>_all.deb   mmm_common.conf, log directory + logrotate, docs
#   mysql-mmm-agent_<v>_<arch>.deb  mmm_agentd, its unit, mmm_agent.conf, /etc/default, man page, completions
#   mysql-mmm-monitor_<v>_<arch>.deb mmm_mond + mmm_control + mmm_tls, the unit, mmm_mon.conf, man pages, completions
#   mysql-mmm-tools_<v>_<arch>.deb   mmm_clone + mmm_backup + mmm_restore, their ssh helpers in
#                                    /usr/lib/mysql-mmm/tools/, mmm_tools.conf, man pages, completions
# <v> is the workspace version with `+` for `-` (2.2.1-rs.1 → 2.2.1+rs.1-1), so the packages
# sort after Debian's Perl 2.2.1 packages of the same names, which they replace.
#
# Steps: installs the pinned cargo-deb if missing (cargo install --locked); builds the
# programs and xtask (cargo build --profile release); generates the man pages and completions
# from the programs' clap definitions (xtask) into packaging/generated/; runs cargo deb
# --no-build for each package. Runs as root or as a user (as root through sudo, cargo runs
# as the user who ran sudo: scripts/cargo-env.sh). Time: see README.md.
#
# MMM_DEB_PROFILE=dev packages the debug build instead of a release build (what the test
# suite does: the same package contents, minutes less compile time; not for shipping).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh
CARGO_DEB_VERSION=3.8.0
PROFILE="${MMM_DEB_PROFILE:-release}"
OUT="$TARGET_DIR/debian"
say() { printf 'package.sh: %s\n' "$*" >&2; }

if ! run_cargo deb --version 2>/dev/null | grep -q "^cargo-deb $CARGO_DEB_VERSION\$"; then
    say "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)"
    run_cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

say "building the binaries (profile $PROFILE): $(describe_build)"
if [ "$PROFILE" = dev ]; then
    # test.sh's own build command: after it, nothing is rebuilt (the same feature set).
    built="$TARGET_DIR/debug"
    run_cargo build --workspace --all-targets
else
    # One command for the programs and xtask, so that they share one build of the deps.
    built="$TARGET_DIR/$PROFILE"
    run_cargo build --profile "$PROFILE" -p mmm-agent -p mmm-mon -p mmm-control -p mmm-tls -p mmm-tools -p xtask --bins
fi
# cargo-deb names profile directories itself; for the debug build it is given a directory
# of its own with links to the debug binaries (cargo-deb refuses the dev profile).
deb_profile="$PROFILE"
if [ "$PROFILE" = dev ]; then
    deb_profile=deb-dev
    as_builder mkdir -p "$TARGET_DIR/$deb_profile"
    for b in mmm_agentd mmm_mond mmm_control mmm_tls \
        mmm_clone mmm_backup mmm_restore stream_backup create_snapshot remove_snapshot; do
        as_builder ln -f "$built/$b" "$TARGET_DIR/$deb_profile/$b"
    done
fi

say "man pages and completions (xtask)"
gen="$REPO/packaging/generated"
as_builder rm -rf "$gen"
# The pages' date: the last commit's (reproducible), else today.
date="$(as_builder git -C "$REPO" log -1 --format=%cs 2>/dev/null || date -u +%F)"
as_builder "$built/xtask" assets "$gen" "$date" </dev/null
as_builder gzip -9n "$gen"/man/*.8

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
deb_version="${version/-/+}-1"
as_builder mkdir -p "$OUT"
for p in mmm-common mmm-agent mmm-mon mmm-tools; do
    say "cargo deb -p $p ($deb_version)"
    run_cargo deb --no-build -p "$p" --profile "$deb_profile" --deb-version "$deb_version" --output "$OUT/" \
        ${CARGO_DEB_QUIET:+--quiet}
done
ls -l "$OUT"/*.deb
