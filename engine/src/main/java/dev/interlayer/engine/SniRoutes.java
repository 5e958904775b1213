package dev.interlayer.engine;

import io.netty.util.DomainWildcardMappingBuilder;
import io.netty.util.Mapping;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The routes of a TLS passthrough listener ({@code sni-routes:}): the agent reads the client hello's server name (SNI)
 * and forwards the connection, still encrypted, to the upstream of that name; it never decrypts. A name is exact
 * ({@code api.example.com}) or a wildcard of one label ({@code *.example.com} matches {@code a.example.com}, not
 * {@code example.com} nor {@code a.b.example.com}), case-insensitive; an exact name wins over a wildcard (Netty's
 * {@link DomainWildcardMappingBuilder}, as the certificates of a {@code tls:} block are chosen). A hello without a name,
 * or with a name no route lists, goes to the listener's upstream, or is refused if it has none.
 *
 * @param routes server name (lower case) to upstream, in config order
 * @param timeout how long a new connection may take to send its complete client hello
 */
public record SniRoutes(Map<String, InetSocketAddress> routes, Duration timeout) {

    /** {@code sni-timeout} when not set, as {@code handshake-timeout}. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);
    /**
     * The longest client hello read (its handshake message; its records may add their 5-byte headers): real ones are
     * 200 bytes to 2 KiB (a post-quantum key share, a session ticket), so 16 KiB leaves room without letting a client
     * make the agent buffer much.
     */
    public static final int MAX_HELLO = 16 * 1024;

    private static final Pattern LABEL = Pattern.compile("[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?");

    public SniRoutes {
        if (routes == null || routes.isEmpty()) throw new IllegalArgumentException("sni-routes needs at least one route");
        Map<String, InetSocketAddress> copy = new LinkedHashMap<>();
        for (Map.Entry<String, InetSocketAddress> e : routes.entrySet()) {
            String why = whyNotAName(e.getKey());
            if (why != null) throw new IllegalArgumentException("sni-routes: " + why);
            if (e.getValue() == null) throw new IllegalArgumentException("sni-routes: " + e.getKey() + " has no upstream");
            if (copy.put(e.getKey().toLowerCase(Locale.ROOT), e.getValue()) != null) {
                throw new IllegalArgumentException("sni-routes: " + e.getKey() + " is listed twice");
            }
        }
        routes = java.util.Collections.unmodifiableMap(copy);
        timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        if (timeout.isZero() || timeout.isNegative()) throw new IllegalArgumentException("sni-timeout must be longer than 0");
    }

    /**
     * Why {@code name} cannot be a route's server name, or null if it can: a host name of letters, digits, {@code -} and
     * {@code _} in dot-separated labels of up to 63, 253 at most, optionally starting with {@code *.}; not an IP address
     * (a client never sends one as SNI) and without a trailing dot (clients send none).
     */
    public static String whyNotAName(String name) {
        if (name == null || name.isEmpty()) return "an empty server name; expected a host name such as api.example.com, or *.example.com";
        String n = name.toLowerCase(Locale.ROOT);
        if (n.endsWith(".")) return "'" + name + "' ends with a dot; write it without (clients send the name without one)";
        String rest = n.startsWith("*.") ? n.substring(2) : n;
        if (rest.length() > 253) return "'" + name + "' is longer than 253 characters; no host name is";
        if (rest.contains("*")) {
            return "'" + name + "' is not a server name: a wildcard is a whole first label, as in *.example.com";
        }
        String[] labels = rest.split("\\.", -1);
        for (String l : labels) {
            if (!LABEL.matcher(l).matches()) {
                return "'" + name + "' is not a server name; expected a host name such as api.example.com, or *.example.com"
                        + " (labels of letters, digits and '-', up to 63 each)";
            }
        }
        if (labels.length == 4 && rest.matches("[0-9.]+")) {
            return "'" + name + "' is an IP address, which clients never send as a server name; such connections take the"
                    + " listener's upstream (the default route)";
        }
        if (n.startsWith("*.") && labels.length < 2) {
            return "'" + name + "' would match every name of a top-level domain; list the names, or use the default route (upstream:)";
        }
        return null;
    }

    /**
     * Where a connection goes: {@code pattern} is the route that matched (null: the default route), {@code address} the
     * upstream (null: none, the connection is refused).
     */
    public record Route(String pattern, InetSocketAddress address) {}

    /** The matcher of these routes, with {@code fallback} (null: refuse) for no name and unknown names. */
    Mapping<String, Route> matcher(InetSocketAddress fallback) {
        DomainWildcardMappingBuilder<Route> b = new DomainWildcardMappingBuilder<>(new Route(null, fallback));
        routes.forEach((name, to) -> b.add(name, new Route(name, to)));
        Mapping<String, Route> m = b.build();
        Route none = new Route(null, fallback);
        return name -> {
            if (name == null) return none;
            try {
                return m.map(name);
            } catch (IllegalArgumentException notAHostName) {
                return none; // a name no route can list (IDN refuses it): the default route, as for an unknown name
            }
        };
    }

    /** The routes as the listener's start line shows them. */
    String describe(InetSocketAddress fallback) {
        List<String> out = new ArrayList<>();
        routes.forEach((name, to) -> out.add(name + " -> " + to));
        return "sni passthrough (" + String.join(", ", out) + "; no or another name -> "
                + (fallback == null ? "refused (no upstream:)" : fallback.toString()) + "; client hello within " + timeout.toMillis() + " ms)";
    }
}
