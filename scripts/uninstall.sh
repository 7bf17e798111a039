#!/usr/bin/env bash
# Removes what `make install` puts in place: the files that `cmake --install`
# of the build directory writes under PREFIX (and below DESTDIR), found by
# installing into a scratch directory first. Directories stay. make uninstall
# runs it with the same variables as make install.
#
#   BUILD    the build directory                        (default: build)
#   PREFIX   the installation prefix    (default: the one the build was configured with)
#   DESTDIR  the staging directory above PREFIX            (default: none)
set -euo pipefail

BUILD=${BUILD:-build}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-}
[[ -f $BUILD/CMakeCache.txt ]] || { echo "uninstall: $BUILD is not a build directory" >&2; exit 2; }
if [[ -z $PREFIX ]]; then
    PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
fi

# An absolute directory (-DCMAKE_INSTALL_LIBDIR=/...) would not follow the
# scratch prefix: the files would really be installed there.
if grep -Eq '^CMAKE_INSTALL_(BIN|LIB|INCLUDE|DATAROOT|MAN)DIR:[A-Z]*=/' "$BUILD/CMakeCache.txt"; then
    echo "uninstall: $BUILD has absolute installation directories; remove the files listed in $BUILD/install_manifest.txt" >&2
    exit 2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
env -u DESTDIR cmake --install "$BUILD" --prefix "$scratch/root" >/dev/null

removed=0
while IFS= read -r -d '' file; do
    target="$DESTDIR$PREFIX/${file#"$scratch/root/"}"
    if [[ -e $target || -L $target ]]; then
        rm -f -- "$target"
        echo "-- Removed: $target"
        removed=$((removed + 1))
    fi
done < <(find "$scratch/root" \( -type f -o -type l \) -print0)
echo "uninstall: removed $removed files from $DESTDIR$PREFIX"
