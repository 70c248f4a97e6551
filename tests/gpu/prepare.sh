#!/usr/bin/env bash
# tests/gpu/prepare.sh — run HERE (a machine with network and apt), before a GPU run:
# fills .gpu-deps/ (git-ignored) with what tests/gpu/check.sh needs on a GPU machine that
# has CUDA, PyTorch and cuDNN (Python wheels) but no network and no -dev packages:
#
#   .gpu-deps/prefix.tar.xz  jansson, utf8proc, OpenBLAS (+ libgfortran) and pkgconf,
#                            and the server's libmicrohttpd, libpng, libjpeg-turbo's
#                            TurboJPEG and libwebp: headers + shared libraries + .pc
#                            files, from Debian's .debs (apt-get download, dpkg-deb -x;
#                            static archives and docs dropped; Requires.private cut, the
#                            build links shared); check.sh unpacks it and points
#                            pkg-config there.  libmicrohttpd's TLS library (gnutls) is
#                            the GPU machine's own: without it check.sh falls back to
#                            the scheduler in process for the load stage;
#   .gpu-deps/wheels/        diffusers (+ importlib_metadata) for the side-by-side
#                            benchmark (torch, transformers, hub are on that machine).
#
# Then, from the session: run(command="CHECK_BUDGET_S=430 bash tests/gpu/check.sh",
# carry=[".gpu-deps"], timeout_s=480).  Size: about 14 MiB (the working tree plus carry
# must stay < 64 MiB).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DEST="$ROOT/.gpu-deps"
DEBS=(libjansson-dev libjansson4 libutf8proc-dev libutf8proc2 libopenblas-dev libopenblas0
      libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 pkgconf-bin
      libpkgconf3
      libmicrohttpd-dev libmicrohttpd12 libpng-dev libpng16-16 libturbojpeg0-dev
      libturbojpeg0 libwebp-dev libwebp7 libwebpmux3 libwebpdemux2)
DIFFUSERS_VERSION=${DIFFUSERS_VERSION:-0.42.1}   # needs huggingface-hub >= 1.32 (the GPU image has 1.33)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$DEST"
# never committed: ignored through this checkout's own exclude list (the device tool
# then sends it only when `carry` names it)
if ! git -C "$ROOT" check-ignore -q "$DEST" 2>/dev/null; then
  echo "/.gpu-deps/" >>"$(git -C "$ROOT" rev-parse --git-path info/exclude)"
fi
mkdir -p "$DEST/wheels" "$work/debs" "$work/prefix"

(cd "$work/debs" && apt-get download "${DEBS[@]}")
for f in "$work"/debs/*.deb; do
  dpkg-deb -x "$f" "$work/prefix"
done
# keep headers, shared libraries, .pc files and the pkgconf binary
find "$work/prefix" -name '*.a' -delete
rm -rf "$work/prefix/usr/share/doc" "$work/prefix/usr/share/man" "$work/prefix/usr/share/lintian" \
       "$work/prefix/etc"
# shared linking only: a private requirement (gnutls, zlib) need not be there as a .pc
find "$work/prefix" -name '*.pc' -exec sed -i '/^Requires.private:/d' {} +
# Debian's openblas.pc lives under the alternatives folder; expose it where pkg-config looks
ln -sf ../openblas-pthread/pkgconfig/openblas.pc \
      "$work/prefix/usr/lib/x86_64-linux-gnu/pkgconfig/openblas.pc"
for lib in libopenblas.so libopenblas.so.0 libblas.so.3; do
  ln -sf "openblas-pthread/$lib" "$work/prefix/usr/lib/x86_64-linux-gnu/$lib"
done
tar -C "$work/prefix" -cJf "$DEST/prefix.tar.xz" .

python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST/wheels" "diffusers==$DIFFUSERS_VERSION" importlib_metadata
du -sh "$DEST"/* | sed 's/^/prepare: /'
