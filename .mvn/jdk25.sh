# Sourced by ./mvnw and ./interlayer: makes JAVA_HOME point at a JDK 25 or stops with a clear message.
# Order: $JAVA_HOME if it is 25+, then JDKs under /usr/lib/jvm and /opt (Temurin first), then `java` on PATH.
interlayer_java_major() {
  # A JDK's release file names its version: reading it saves starting a JVM (a tenth of a second) on every call.
  local m
  m=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null | head -n1)
  if [ -n "$m" ]; then echo "$m"; return 0; fi
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}
interlayer_find_jdk25() {
  local c m
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25* /usr/lib/jvm/*-25* /usr/lib/jvm/jdk-25* /opt/jdk-25* /opt/java/* \
           "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    m=$(interlayer_java_major "$c")
    if [ -n "$m" ] && [ "$m" -ge 25 ]; then echo "$c"; return 0; fi
  done
  return 1
}
if ! INTERLAYER_JDK=$(interlayer_find_jdk25); then
  echo "interlayer: no JDK 25 found (checked \$JAVA_HOME, /usr/lib/jvm, /opt and the java on PATH)." >&2
  echo "interlayer: install a JDK 25 (e.g. Temurin 25 into /usr/lib/jvm/temurin-25-jdk-amd64) or set JAVA_HOME to one." >&2
  exit 1
fi
export JAVA_HOME="$INTERLAYER_JDK"
unset INTERLAYER_JDK
