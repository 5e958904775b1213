#!/usr/bin/env bash
# Runs an Interlayer agent as a target of another benchmark harness: any harness that starts a forwarder
# with a listen port and an upstream and stops it with SIGTERM (bench/run has its own targets and does not use it).
#
#   bench/interlayer-target.sh LISTEN_PORT UPSTREAM_HOST:PORT [MODULE...] [--hops 2] [--tmp DIR]
#                              [--tls CERT KEY] [--tls-provider openssl|jdk]
#
# MODULE is a jar name under cli/target/sample-modules (tag, tcplog, ...) or bench/modules/*/target (pass).
# --hops 2 runs two listeners in the one agent, back to back (client role -> server role), the way a tag
# pair is deployed: the stream is tagged between the hops and untagged before the upstream.
# --tls CERT KEY: the (first) listener terminates TLS with that PEM certificate and PKCS#8 key (a tls: block),
# the upstream stays plain; --tls-provider picks the provider (default openssl: BoringSSL).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$ROOT/.mvn/jdk25.sh"
listen=$1; upstream=$2; shift 2
hops=1; tmp=""; mods=(); tls=""; provider=openssl
while [ $# -gt 0 ]; do
  case $1 in
    --hops) hops=$2; shift 2;;
    --tmp) tmp=$2; shift 2;;
    --tls) tls=", tls: {provider: $provider, cert: $2, key: $3}"; cert=$2; key=$3; shift 3;;
    --tls-provider) provider=$2; shift 2;;
    *) mods+=("$1"); shift;;
  esac
done
[ -z "$tls" ] || tls=", tls: {provider: $provider, cert: $cert, key: $key}"   # --tls-provider may come after --tls
[ -n "$tmp" ] || tmp=$(mktemp -d)
dir="$tmp/interlayer-$listen"
rm -rf "$dir"; mkdir -p "$dir/modules"
for m in "${mods[@]}"; do
  jar=""
  for c in "$ROOT/cli/target/sample-modules/module-$m.jar" "$ROOT/bench/modules/$m/target/$m.jar"; do
    [ -f "$c" ] && jar=$c && break
  done
  [ -n "$jar" ] || { echo "interlayer-target: no module jar for '$m' (build with ./mvnw -q install -DskipTests)" >&2; exit 2; }
  cp "$jar" "$dir/modules/$m.jar"
done
{
  echo "agent:"
  echo "  modules-dir: modules"
  echo "  control: {enabled: false}"
  echo "listeners:"
  if [ "$hops" = 2 ]; then
    inner=$((listen + 1000))
    echo "  - {name: hop1, listen: 127.0.0.1:$listen, upstream: 127.0.0.1:$inner, role: client$tls}"
    echo "  - {name: hop2, listen: 127.0.0.1:$inner, upstream: $upstream, role: server}"
  else
    echo "  - {name: fwd, listen: 127.0.0.1:$listen, upstream: $upstream, role: client$tls}"
  fi
} > "$dir/agent.yaml"
export INTERLAYER_NO_BUILD=1
export INTERLAYER_JVM_OPTS="${INTERLAYER_JVM_OPTS:--Xms256m -Xmx256m -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=512m -Dio.netty.leakDetection.level=disabled}"
exec "$ROOT/interlayer" run --config "$dir/agent.yaml"
