#!/usr/bin/env bash
# Makes the parts Jib puts together into the container image (image/pom.xml runs it in the package phase, before Jib):
#
#  OUT/base.tar     the base image, as a `docker save` tarball (Jib reads it as tar://): Debian SUITE made by mmdebstrap
#                   --variant=minbase from MIRROR, plus nftables (interception), the user and group interlayer (10001) and
#                   the folders the default config writes to, owned by it. No container registry is involved. The tarball
#                   is kept in CACHE, named by suite, ISO week and a hash of BASE_RECIPE: the first build of a week (or
#                   after a change of the recipe) makes it (two to five minutes), later builds reuse it, and a new one
#                   replaces the older ones. OUT/base.tar is a link to the cached file.
#  OUT/runtime/     /opt/interlayer/runtime: a jlink image of the JDK running the build with the modules the agent needs.
#  OUT/app/         /opt/interlayer: the distribution archive unpacked, without its AOT cache (lib/interlayer.aot belongs
#                   to the build's JDK; the jlink image's JVM refuses it: "lib/modules ... size has changed");
#                   /etc/interlayer/agent.yaml: the archive's default config.
#
#  CLASSES         the module's (empty) classes folder, made because Jib stops without one.
#
# Usage: prepare.sh JDK ARCHIVE OUT CACHE SUITE MIRROR CLASSES
set -euo pipefail
JDK=$1 ARCHIVE=$2 OUT=$3 CACHE=$4 SUITE=$5 MIRROR=$6 CLASSES=$7
# The Java modules of the runtime: what `jdeps --ignore-missing-deps --multi-release 25 --print-module-deps
# lib/interlayer.jar` prints (java.base,java.desktop,java.naming,java.security.jgss,java.sql,jdk.jfr,jdk.management,
# jdk.unsupported; it takes a minute or more, so it is not run on every build: run it again when dependencies change),
# plus what is reached only by reflection or service lookup: DNS names (jdk.naming.dns), PKCS#11 keys
# (jdk.crypto.cryptoki), zip file systems (jdk.zipfs), and jcmd with JFR to look into a running agent (jdk.jcmd,
# jdk.management.jfr). ContainerImageTest runs the demo on it.
MODULES=java.base,java.desktop,java.naming,java.security.jgss,java.sql,jdk.jfr,jdk.management,jdk.unsupported,\
jdk.naming.dns,jdk.crypto.cryptoki,jdk.zipfs,jdk.jcmd,jdk.management.jfr
UID_GID=10001

fail() {
  echo "interlayer image: $*" >&2
  exit 1
}

[ -r "$ARCHIVE" ] || fail "the distribution archive $ARCHIVE is missing: build it first (./mvnw package -pl image -am)"

# How the base is made: mmdebstrap's arguments. --skip=cleanup/run keeps /run/interlayer (the control socket's folder).
BASE_RECIPE=(--quiet --variant=minbase --include=nftables --skip=cleanup/run
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --customize-hook="chroot \"\$1\" groupadd --system --gid $UID_GID interlayer"
  --customize-hook="chroot \"\$1\" useradd --system --uid $UID_GID --gid $UID_GID --no-create-home \
--home-dir /var/lib/interlayer --shell /usr/sbin/nologin interlayer"
  --customize-hook="install -d -o $UID_GID -g $UID_GID \"\$1/run/interlayer\" \"\$1/var/lib/interlayer\" \
\"\$1/var/lib/interlayer/modules\" \"\$1/var/log/interlayer\""
  "$SUITE")

make_base() {
  local base=$1 diff
  if ! command -v mmdebstrap >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "mmdebstrap is needed to make the image's base (Debian $SUITE) and it is not installed: \
sudo apt-get install mmdebstrap, or build without the image: -Dinterlayer.image.skip=true"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  fi
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/.base.XXXXXX")   # global: the trap runs after this function returned
  trap 'rm -rf "$work"' EXIT
  echo "interlayer image: making the base image (Debian $SUITE minbase from $MIRROR) into $base"
  mmdebstrap "${BASE_RECIPE[@]}" "$work/layer.tar" "$MIRROR"
  diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  cat >"$work/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/bash"]},"rootfs":{"type":"layers","diff_ids":["sha256:$diff"]}}
EOF
  echo '[{"Config":"config.json","RepoTags":["interlayer-base:'"$SUITE"'"],"Layers":["layer.tar"]}]' >"$work/manifest.json"
  tar -cf "$work/image.tar" -C "$work" manifest.json config.json layer.tar
  mv "$work/image.tar" "$base"
  find "$CACHE" -maxdepth 1 -name "$SUITE-minbase-*.tar" ! -name "$(basename "$base")" -delete
}

# named by suite, ISO week and recipe: a changed recipe makes a new base at once
base="$CACHE/$SUITE-minbase-$(date -u +%G-W%V)-$(printf '%s\n' "${BASE_RECIPE[@]}" | sha256sum | cut -c1-8).tar"
[ -s "$base" ] || make_base "$base"

rm -rf "$OUT"
mkdir -p "$CLASSES" "$OUT/app/opt/interlayer" "$OUT/app/etc/interlayer" "$OUT/runtime/opt/interlayer"
ln -s "$base" "$OUT/base.tar"
tar xzf "$ARCHIVE" -C "$OUT/app/opt/interlayer" --strip-components=1
rm -f "$OUT/app/opt/interlayer/lib/interlayer.aot"
cp "$OUT/app/opt/interlayer/etc/agent.yaml" "$OUT/app/etc/interlayer/agent.yaml"

"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --output "$OUT/runtime/opt/interlayer/runtime"
