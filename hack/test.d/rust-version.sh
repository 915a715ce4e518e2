#!/usr/bin/env bash
# Cargo.toml's rust-version is a promise: this checks it. When the default toolchain is that
# version, the suite's own build is the check; otherwise drill is built with that toolchain
# (`cargo +<version> check`), which must be installed: a promise nobody can check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$want" ] || { echo "Cargo.toml names no rust-version" >&2; exit 1; }
have=$(rustc --version | awk '{print $2}')
if [ "${have%.*}" = "$want" ] || [ "$have" = "$want" ]; then
  echo "rust-version $want: the suite builds with rustc $have"
  exit 0
fi
toolchain=$(rustup toolchain list 2>/dev/null | awk -v v="$want" 'index($1, v) == 1 { print $1; exit }')
[ -n "$toolchain" ] || { echo "rust-version $want: no such toolchain here to check it (rustc is $have)" >&2; exit 1; }
echo "rust-version $want: checking with $toolchain"
cargo "+$toolchain" check --locked --all-targets --quiet
