#!/usr/bin/env bash
# Builds a release of tern and writes, into dist/ of cargo's target directory (target/dist/ unless
# CARGO_TARGET_DIR or a cargo config moves it):
#   tern-<version>-<target>.tar.gz  with tern-<version>-<target>/{tern,README.md,LICENSE,tern.toml,tern.service}
#   tern_<version>-1_<arch>.deb     when `cargo deb` is installed and the target is Linux
#   SHA256SUMS                      of every tern-<version>-* archive and tern_<version>* package there
#
# Usage: dist/release.sh [--target TRIPLE] [--no-deb]
#   --target   default: the host (`rustc -vV`); another one must be installed (`rustup target add`)
#              or built through CARGO=cross / CARGO="cargo zigbuild"
#   --no-deb   skip the Debian package even when cargo-deb is installed
# Environment: CARGO (default cargo), STRIP (default strip; e.g. aarch64-linux-gnu-strip).
# Then `dist/smoke.sh` tries the host's archive as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."

target=
deb=auto
while [ $# -gt 0 ]; do
    case $1 in
        --target) target=$2; shift 2 ;;
        --target=*) target=${1#--target=}; shift ;;
        --no-deb) deb=no; shift ;;
        -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

read -r -a cargo <<<"${CARGO:-cargo}"
host=$(rustc -vV | sed -n 's/^host: //p')
target=${target:-$host}
# metadata CODE: runs the Python CODE with m, cargo's metadata of this package (parsed JSON).
metadata() {
    cargo metadata --no-deps --format-version 1 --locked | python3 -c "import json, sys; m = json.load(sys.stdin); $1"
}
version=$(metadata 'print(next(p["version"] for p in m["packages"] if p["name"] == "tern"))')
# Where cargo builds: CARGO_TARGET_DIR, a cargo config's build.target-dir, or ./target.
target_dir=$(metadata 'print(m["target_directory"])')
name=tern-$version-$target
out=$target_dir/dist
echo "==> $name"

# Build. The release profile has LTO and one codegen unit. A cross target gets its own directory.
if [ "$target" = "$host" ] && [ "${cargo[*]}" = cargo ]; then
    cargo build --release --locked --bin tern
    binary=$target_dir/release/tern
else
    "${cargo[@]}" build --release --locked --bin tern --target "$target"
    binary=$target_dir/$target/release/tern
fi
case $target in *windows*) binary=$binary.exe ;; esac

# Stage the archive's directory.
mkdir -p "$out"
rm -rf "${out:?}/$name" "$out/$name.tar.gz"
mkdir "$out/$name"
cp "$binary" "$out/$name/"
cp README.md LICENSE dist/tern.toml dist/tern.service "$out/$name/"
chmod 755 "$out/$name/tern"
chmod 644 "$out/$name"/{README.md,LICENSE,tern.toml,tern.service}

# Strip the copy (cargo's [profile.release] does not strip). A strip that cannot read this target
# (a host `strip` on an aarch64 binary) leaves it unstripped with a warning: set STRIP.
strip_tool=${STRIP:-strip}
if command -v "$strip_tool" >/dev/null; then
    if ! "$strip_tool" "$out/$name/tern" 2>/dev/null; then
        echo "warning: $strip_tool could not strip the $target binary; shipping it unstripped" >&2
    fi
else
    echo "warning: no $strip_tool; shipping the binary unstripped" >&2
fi

# The archive: entries owned by root and sorted, where GNU tar allows it.
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar_options=(--owner=0 --group=0 --numeric-owner --sort=name)
else
    tar_options=(--uid 0 --gid 0)
fi
tar -C "$out" "${tar_options[@]}" -czf "$out/$name.tar.gz" "$name"
rm -rf "${out:?}/$name"

# The Debian package, from the binary built above (cargo-deb strips its own copy).
if [ "$deb" = auto ] && [[ $target == *-linux-* ]] && cargo deb --version >/dev/null 2>&1; then
    rm -f "$out"/tern_"$version"-*.deb
    if [ "$target" = "$host" ]; then
        cargo deb --no-build --output "$out/"
    else
        cargo deb --no-build --target "$target" --output "$out/"
    fi
elif [ "$deb" = auto ]; then
    echo "note: no .deb (needs a Linux target and cargo-deb: cargo install cargo-deb)" >&2
fi

# Checksums of everything of this version in $out.
(
    cd "$out"
    shopt -s nullglob
    files=(tern-"$version"-*.tar.gz tern_"$version"-*.deb)
    if command -v sha256sum >/dev/null; then
        sha256sum "${files[@]}" >SHA256SUMS
    else
        shasum -a 256 "${files[@]}" >SHA256SUMS
    fi
)

echo "==> $out"
ls -l "$out"
cat "$out/SHA256SUMS"
