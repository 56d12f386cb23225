#!/usr/bin/env bash
# Check that adamant-core has no `std` or `alloc` anywhere in its dependency tree.
#
# 1. `cargo tree -p adamant-core -e normal,features`: every crate must be core's allowed
#    dependencies (half, libm, heapless) or one of their own no_std dependencies, proc-macro
#    crates may appear only as build-time (host) dependencies, and no `std`/`alloc` feature
#    may be enabled on any crate.
# 2. Build and run scripts/no-std-probe: a `#![no_std]`, `#![no_main]` binary with
#    `panic = "abort"` and no global allocator that links core and takes one AdamW step. A
#    crate linking `std` makes the link fail with a duplicate `panic_impl`; one linking
#    `alloc` fails for want of a global allocator. The host target suffices: no extra rustup
#    target is needed. If a bare-metal target (thumbv7em-none-eabihf) happens to be installed,
#    core is also built for it.
#
# Usage: scripts/check-core-no-std.sh   (from anywhere; exits nonzero on failure)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail=0

# Core's direct dependencies, and the no_std crates they depend on.
allowed_runtime="adamant-core half libm heapless cfg-if zerocopy hash32 byteorder stable_deref_trait"
# Proc-macro crates and their dependencies run on the build host only; they never link into core.
allowed_host="zerocopy-derive proc-macro2 quote syn unicode-ident"

tree="$(cargo tree -p adamant-core -e normal,features --prefix none --color never)"
crates="$(cargo tree -p adamant-core -e normal --prefix none --color never -f '{p}' \
    | sed 's/ (\*)$//' | awk '{print $1}' | sort -u)"

for c in $crates; do
    case " $allowed_runtime $allowed_host " in
        *" $c "*) ;;
        *) echo "check-core-no-std: crate \`$c\` is not an allowed dependency of adamant-core" >&2; fail=1 ;;
    esac
done

# Host-only crates must sit under a proc-macro in the tree, never be a plain dependency.
plain="$(cargo tree -p adamant-core -e normal,no-proc-macro --prefix none --color never -f '{p}' \
    | awk '{print $1}' | sort -u)"
for c in $plain; do
    case " $allowed_host " in
        *" $c "*) echo "check-core-no-std: host-only crate \`$c\` is linked into adamant-core" >&2; fail=1 ;;
    esac
done

# No crate may have a std/alloc feature enabled.
bad_features="$(printf '%s\n' "$tree" | grep -E 'feature "(std|alloc|use_std|use_alloc)"' || true)"
if [ -n "$bad_features" ]; then
    echo "check-core-no-std: std/alloc features are enabled:" >&2
    printf '%s\n' "$bad_features" | sort -u >&2
    fail=1
fi

# Link core into a binary without std or alloc, and run it.
probe="scripts/no-std-probe"
cp Cargo.lock "$probe/Cargo.lock"
if cargo build --release --quiet --manifest-path "$probe/Cargo.toml" \
        --target-dir target/no-std-probe; then
    if ! ./target/no-std-probe/release/adamant-no-std-probe; then
        echo "check-core-no-std: the no_std probe ran but its AdamW step failed" >&2
        fail=1
    fi
else
    echo "check-core-no-std: adamant-core does not link into a no_std, no-alloc binary" >&2
    fail=1
fi
rm -f "$probe/Cargo.lock"

if rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf; then
    cargo build -p adamant-core --target thumbv7em-none-eabihf --quiet || {
        echo "check-core-no-std: adamant-core does not build for thumbv7em-none-eabihf" >&2
        fail=1
    }
else
    echo "check-core-no-std: note: thumbv7em-none-eabihf not installed; the host no_std probe stands in"
fi

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "check-core-no-std: ok ($(echo $crates | wc -w) crates in core's tree, no std/alloc)"
