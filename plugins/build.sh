#!/usr/bin/env bash
# Builds the bots for wasm32-wasip2 in release and copies them to plugins/dist/, which is
# committed: the server embeds stocks.wasm and notes.wasm, its tests load testbot.wasm, and so
# building or running hearth needs no wasm toolchain.
#
#   plugins/build.sh           rebuild dist/ (commit the result)
#   plugins/build.sh --check   rebuild in a temporary target dir and fail if dist/ differs
#
# The bytes depend on the sources, Cargo.lock and the Rust toolchain only: paths of this
# checkout, of CARGO_HOME and of the toolchain are remapped, so any clone builds the same files.
set -euo pipefail
cd "$(dirname "$0")"
plugins_dir=$(pwd -P)

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *)
    echo "usage: plugins/build.sh [--check]" >&2
    exit 2
    ;;
esac

rustup target list --installed 2>/dev/null | grep -q '^wasm32-wasip2$' ||
  rustup target add wasm32-wasip2

# crate (directory) -> file in dist/, named after the bot's manifest name.
bots=("stock-quote:stocks" "notes:notes" "test-bot:testbot")

if $check; then
  target_dir=$(mktemp -d "${TMPDIR:-/tmp}/hearth-plugins-check.XXXXXX")
  trap 'rm -rf "$target_dir"' EXIT
else
  target_dir="$plugins_dir/target"
fi

cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
sysroot=$(rustc --print sysroot)
# Separated by 0x1f, so that paths with spaces stay whole. Given with --target, these flags
# reach the bots and their dependencies but not build scripts or proc-macros. When prefixes
# overlap the last match wins, so the target dir (inside plugins/ by default) comes last.
flags=(
  "--remap-path-prefix=$plugins_dir=/hearth/plugins"
  "--remap-path-prefix=$cargo_home=/cargo"
  "--remap-path-prefix=$sysroot=/rust"
  "--remap-path-prefix=$target_dir=/target"
  "-Cdebuginfo=0"
)
CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; echo "${flags[*]}")
export CARGO_ENCODED_RUSTFLAGS
export CARGO_INCREMENTAL=0

packages=()
for bot in "${bots[@]}"; do
  packages+=(-p "${bot%%:*}")
done
cargo build --quiet --locked --release --target wasm32-wasip2 \
  --manifest-path "$plugins_dir/Cargo.toml" --target-dir "$target_dir" "${packages[@]}"

built_with=$(rustc --version)
stale=()
for bot in "${bots[@]}"; do
  crate=${bot%%:*}
  name=${bot##*:}
  built="$target_dir/wasm32-wasip2/release/${crate//-/_}.wasm"
  if $check; then
    cmp -s "$built" "dist/$name.wasm" || stale+=("plugins/dist/$name.wasm (from plugins/$crate)")
  else
    mkdir -p dist
    cp "$built" "dist/$name.wasm"
    echo "plugins/dist/$name.wasm: $(wc -c <"dist/$name.wasm") bytes"
  fi
done

if ! $check; then
  echo "$built_with" >dist/rustc-version.txt
  exit 0
fi
if [ ${#stale[@]} -gt 0 ]; then
  echo "error: the committed bots differ from what their sources build to:" >&2
  printf '  %s\n' "${stale[@]}" >&2
  dist_built_with=$(cat dist/rustc-version.txt 2>/dev/null || echo "an unknown rustc")
  if [ "$dist_built_with" != "$built_with" ]; then
    echo "dist/ was built with $dist_built_with, and this is $built_with:" \
      "a different Rust builds different bytes." >&2
  fi
  echo "Run plugins/build.sh and commit plugins/dist/." >&2
  exit 1
fi
echo "plugins/dist: ${#bots[@]} bots match their sources"
