#!/usr/bin/env bash
# Control-plane benchmark: calls/s and latency of Modules.List and Modules.SetState over the Unix socket,
# with the security module on and off, in one run (see control/src/test/java/dev/interlayer/control/ControlBenchmark.java).
# Usage: bench/control-bench.sh [ROUNDS]   (default 3; prints a markdown table)
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$ROOT/.mvn/jdk25.sh"
cd "$ROOT"
./mvnw -q -B -pl control -am test-compile dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench-classpath.txt >/dev/null
CP="control/target/test-classes:control/target/classes:$(cat control/target/bench-classpath.txt)"
exec "$JAVA_HOME/bin/java" --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED -Xmx1g \
  -Djava.util.logging.config.file="$ROOT/.mvn/test-logging.properties" \
  -cp "$CP" dev.interlayer.control.ControlBenchmark "${1:-3}"
