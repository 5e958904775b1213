# Shared by bench/l45/dns-batch, bench/l45/bulk and bench/l45/udp-latency (sourced, not run).
set -euo pipefail
L45=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$L45/../.." && pwd)
. "$ROOT/.mvn/jdk25.sh"
JAVA="$JAVA_HOME/bin/java"
TICKS=$(getconf CLK_TCK)
PIDFILE=$(mktemp /tmp/l45-pids.XXXXXX)   # processes we started (also from $(...) subshells), stopped by stop_all

# Installs Debian packages that are missing (needs root; runs apt-get update once).
need_packages() {
  local missing=()
  for spec in "$@"; do                       # spec = command:package
    command -v "${spec%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${spec%%:*}" ] || missing+=("${spec##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} ..." >&2
  apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2
}

# Builds the distribution and the sample module jars unless they are already there (BUILD=1 forces).
need_build() {
  if [ "${BUILD:-0}" = 1 ] || [ ! -f "$ROOT/cli/target/interlayer.jar" ] || [ ! -f "$ROOT/cli/target/sample-modules/module-dns-tag.jar" ]; then
    echo "building the distribution (./mvnw -q -DskipTests -pl cli -am package) ..." >&2
    (cd "$ROOT" && ./mvnw -q -B -DskipTests -pl cli -am package >&2)
  fi
}

free_port() {  # a loopback port free for both tcp and udp
  python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        s.close(); u.close(); continue
    s.close(); u.close(); print(p); break
PY
}

# start_agent DIR YAML MODULE_JAR...: writes DIR/agent.yaml, copies the jars, starts the agent; echoes its pid.
start_agent() {
  local dir=$1 yaml=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir/modules"
  for m in "$@"; do cp "$ROOT/cli/target/sample-modules/module-$m.jar" "$dir/modules/$m.jar"; done
  printf '%s\n' "$yaml" > "$dir/agent.yaml"
  INTERLAYER_NO_BUILD=1 "$JAVA" --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED \
    ${AGENT_JVM_OPTS:--Xms256m -Xmx256m -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=512m -Dio.netty.leakDetection.level=disabled} \
    -jar "$ROOT/cli/target/interlayer.jar" run --config "$dir/agent.yaml" > "$dir/agent.log" 2>&1 &
  local pid=$!
  echo "$pid" >> "$PIDFILE"
  for _ in $(seq 1 300); do
    grep -q "listener .* -> " "$dir/agent.log" 2>/dev/null && { echo "$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || { echo "agent in $dir did not start:" >&2; cat "$dir/agent.log" >&2; return 1; }
    sleep 0.1
  done
  echo "agent in $dir did not start within 30 s" >&2; return 1
}

# start_dnsmasq DIR PORT: serves DIR/hosts on 127.0.0.1:PORT; echoes its pid.
start_dnsmasq() {
  local dir=$1 port=$2
  /usr/sbin/dnsmasq --no-daemon --conf-file=/dev/null --port="$port" --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --addn-hosts="$dir/hosts" --pid-file= --user=root --cache-size=0 > "$dir/dnsmasq.log" 2>&1 &
  local pid=$!
  echo "$pid" >> "$PIDFILE"
  for _ in $(seq 1 100); do
    [ -n "$(dig @127.0.0.1 -p "$port" h1.test +short +tries=1 +time=1 2>/dev/null)" ] && { echo "$pid"; return 0; }
    sleep 0.1
  done
  echo "dnsmasq did not answer on $port" >&2; cat "$dir/dnsmasq.log" >&2; return 1
}

# stop_all: stops every process the script started (the pids in $PIDFILE) and forgets them.
stop_all() {
  [ -f "$PIDFILE" ] || return 0
  local pids; pids=$(cat "$PIDFILE")
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  : > "$PIDFILE"
}

# cpu_ms PID...: user+system CPU time of the processes so far, in ms.
cpu_ms() {
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    local f; f=$(sed 's/^.*) //' "/proc/$p/stat")
    local ut st; ut=$(echo "$f" | awk '{print $12}'); st=$(echo "$f" | awk '{print $13}')
    t=$((t + ut + st))
  done
  echo $((t * 1000 / TICKS))
}

now_ns() { date +%s%N; }

# mean_sd: reads numbers, prints "mean sd" (sample standard deviation).
mean_sd() {
  awk '{x[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++) v+=(x[i]-m)^2; sd=(NR>1)?sqrt(v/(NR-1)):0; printf "%.4f %.4f\n", m, sd}'
}
