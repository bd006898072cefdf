#!/usr/bin/env bash
# Proves the 64-bit ARM build (Raspberry Pi 3/4/5 on a 64-bit OS): cross-compiles the shipped
# binary (`--profile dist`, or $PACKAGE_PROFILE), checks it is an aarch64 ELF, and runs the process tests against it under qemu-user
# (tests/it/smoke.rs: sign up, a room, a message from one socket to another, an online backup,
# SIGTERM with exit 0, a restore that serves; tests/it/backup.rs: backup under write load,
# restore refusals, export, the control socket's permissions, a damaged store), and builds the
# arm64 Debian package from it. The test clients are this machine's; only the server and its
# command-line tools are emulated.
# scripts/setup installs the target, the cross compiler and qemu.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
# What ships is `dist`; scripts/test sets PACKAGE_PROFILE=release so that CI builds one
# optimised profile per target rather than two (the profiles differ only in LTO and codegen units).
profile="${PACKAGE_PROFILE:-dist}"
bin="$PWD/target/$target/$profile/hearth"

started=$(date +%s)
cargo build --profile "$profile" --locked --target "$target" --bin hearth
built=$(date +%s)

if ! readelf -h "$bin" | grep -q 'Machine:.*AArch64'; then
  echo "error: $bin is not an aarch64 binary" >&2
  exit 1
fi
# What the binary needs of the system: glibc no newer than the package's Depends promises.
needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
glibc=$(readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
echo "aarch64 binary: $(stat -c %s "$bin") bytes; needs: $needed; newest symbol: $glibc"

# The Raspberry Pi's package, from the same binary.
deb=$(cargo deb --no-build --profile "$profile" --locked --target "$target" 2>/dev/null | tail -1)
arch=$(dpkg-deb -f "$deb" Architecture)
[ "$arch" = arm64 ] || { echo "error: $deb is for $arch, not arm64" >&2; exit 1; }
echo "arm64 package: $deb ($(stat -c %s "$deb") bytes)"

TEST_HEARTH_BINARY="$bin" TEST_HEARTH_RUNNER="qemu-aarch64-static -L $sysroot" \
  cargo test --locked --test it -- smoke:: backup::
finished=$(date +%s)
echo "aarch64: cross build $((built - started)) s, tests under qemu $((finished - built)) s"
