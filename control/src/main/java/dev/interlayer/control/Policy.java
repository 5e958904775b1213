package dev.interlayer.control;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.nodes.Node;

/**
 * A control-plane policy: an ordered list of rules over the caller's identity, the endpoint and method,
 * whether the message is a request or a response, and the message's fields. The first rule that matches
 * decides {@code granted} or {@code denied}; when none matches the decision is {@code denied} (rule
 * {@code default}).
 *
 * <p>The file is YAML (see docs/control-plane.md, "Policy language"):
 *
 * <pre>{@code
 * rules:
 *   - name: admins
 *     on: both                      # request (default), response, or both
 *     caller: {uid: [0, agent]}     # agent = the agent's own uid
 *     decision: granted
 *   - name: tcplog-readers
 *     endpoint: Modules
 *     method: Control
 *     fields: {name: tcplog, command: [dump, status]}
 *     decision: granted
 *   - name: responses
 *     on: response
 *     decision: granted
 * }</pre>
 *
 * <p>Loading checks the rules against the IDL: an endpoint or method pattern that matches nothing, or a
 * field that the matched methods' messages do not have, is refused with {@code file:line}.
 * Immutable and thread-safe.
 */
public final class Policy {

    /** Where the default policy lives on the class path. */
    public static final String DEFAULT_RESOURCE = "/dev/interlayer/control/default-policy.yaml";
    /** The rule name reported when no rule matched. */
    public static final String DEFAULT_RULE = "default";

    private static final List<String> TOP_KEYS = List.of("rules");
    private static final List<String> RULE_KEYS = List.of("name", "on", "caller", "endpoint", "method", "fields", "decision", "reason");
    /** Certificate subject attributes a rule can match by name, parsed from the subject (so their order does not matter). */
    static final List<String> SUBJECT_ATTRIBUTES = List.of("cn", "o", "ou", "c", "st", "l", "dc");
    private static final List<String> CALLER_KEYS = List.of("transport", "uid", "gid", "user", "command", "exe", "subject", "san", "cn", "o",
            "ou", "c", "st", "l", "dc");
    private static final Pattern RULE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    /** Which message of a call a decision is about. */
    public enum Kind {
        REQUEST, RESPONSE;

        /** {@code request} or {@code response}. */
        public String word() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The outcome of a policy check.
     *
     * @param granted whether the message may pass
     * @param rule the name of the deciding rule, or {@link #DEFAULT_RULE}
     * @param reason why, for the audit log and the agent's log: names the policy file and the rule's line
     * @param shown why, for the caller's error message: the rule and its reason, without where the policy lives
     */
    public record Decision(boolean granted, String rule, String reason, String shown) {}

    /** Matches a number against values {@code N}, ranges {@code N-M} and the word {@code agent}. */
    private record Numbers(List<long[]> ranges) {
        boolean matches(long v) {
            if (v < 0) {
                return false; // not proven by this transport
            }
            for (long[] r : ranges) {
                if (v >= r[0] && v <= r[1]) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Shell-style patterns ({@code *} any text, {@code ?} one character); empty list = any. */
    private record Globs(List<String> texts, List<Pattern> patterns) {
        boolean matches(String s) {
            if (patterns.isEmpty()) {
                return true;
            }
            if (s == null || s.isEmpty()) {
                return false; // not proven by this transport
            }
            for (Pattern p : patterns) {
                if (p.matcher(s).matches()) {
                    return true;
                }
            }
            return false;
        }

        boolean any() {
            return patterns.isEmpty();
        }
    }

    /** Globs over the values of certificate subject attributes, by attribute ({@code cn}, {@code o}, ...); all must match. */
    private record AttributeMatch(Map<String, Globs> attributes) {
        boolean matches(Caller c) {
            for (Map.Entry<String, Globs> a : attributes.entrySet()) {
                if (!c.subjectAttribute(a.getKey()).stream().anyMatch(a.getValue()::matches)) {
                    return false; // includes a subject without that attribute, and a caller without a certificate
                }
            }
            return true;
        }
    }

    private record CallerMatch(Globs transport, Numbers uid, Numbers gid, Globs user, Globs command, Globs exe, Globs subject, Globs san,
                               AttributeMatch attributes) {
        boolean matches(Caller c) {
            return transport.matches(c.transport())
                    && (uid == null || uid.matches(c.uid()))
                    && (gid == null || gid.matches(c.gid()))
                    && user.matches(c.user())
                    && command.matches(c.command())
                    && exe.matches(c.exe())
                    && subject.matches(c.subject())
                    && (san.any() || c.sans().stream().anyMatch(san::matches))
                    && attributes.matches(c);
        }
    }

    /** A message field path and the values it may have (any element of a repeated field). */
    private record FieldMatch(String path, List<String> values, List<Pattern> patterns) {
        boolean matches(Message m) {
            List<String> actual = new ArrayList<>();
            collect(m, path.split("\\."), 0, actual);
            for (String a : actual) {
                for (int i = 0; i < values.size(); i++) {
                    if (valueMatches(values.get(i), patterns.get(i), a)) {
                        return true;
                    }
                }
            }
            return false;
        }
    }

    private record Rule(String name, int line, Set<Kind> on, CallerMatch caller, Globs endpoints, Globs methods, List<FieldMatch> fields,
                        boolean grant, String reason) {
        boolean matches(Caller c, Idl.Method m, Kind kind, Message msg) {
            if (!on.contains(kind) || !endpoints.matches(m.endpoint()) || !methods.matches(m.name()) || !caller.matches(c)) {
                return false;
            }
            if (!fields.isEmpty()) {
                if (msg == null) {
                    return false;
                }
                for (FieldMatch f : fields) {
                    if (!f.matches(msg)) {
                        return false;
                    }
                }
            }
            return true;
        }
    }

    private final String source;
    private final List<Rule> rules;
    private final long agentUid;
    private final Idl idl;

    private Policy(String source, List<Rule> rules, long agentUid, Idl idl) {
        this.source = source;
        this.rules = rules;
        this.agentUid = agentUid;
        this.idl = idl;
    }

    /** The IDL whose endpoints and methods its rules name. */
    public Idl idl() {
        return idl;
    }

    /** Where it was read from. */
    public String source() {
        return source;
    }

    /** The number of rules. */
    public int size() {
        return rules.size();
    }

    /** The names of the rules, in order. */
    public List<String> ruleNames() {
        return rules.stream().map(Rule::name).toList();
    }

    /** The uid that {@code agent} stands for in this policy. */
    public long agentUid() {
        return agentUid;
    }

    /**
     * Decides one message. {@code message} is the request or response; it must already have passed the
     * structure check.
     */
    public Decision decide(Caller caller, Idl.Method method, Kind kind, Message message) {
        for (Rule r : rules) {
            if (r.matches(caller, method, kind, message)) {
                if (r.reason() != null) {
                    return new Decision(r.grant(), r.name(), r.reason(), r.reason());
                }
                String what = (r.grant() ? "grants " : "denies ") + method.id() + " " + kind.word() + "s to " + caller;
                return new Decision(r.grant(), r.name(), "rule '" + r.name() + "' (" + source + ":" + r.line() + ") " + what,
                        "rule '" + r.name() + "' " + what);
            }
        }
        String tail = " grants the " + kind.word() + " of " + method.id() + " to " + caller + "; what no rule grants is denied";
        // The caller learns that no rule matched, not where the agent keeps its policy.
        return new Decision(false, DEFAULT_RULE, "no rule of " + source + tail, "no rule of the agent's policy" + tail);
    }

    /** The uid this process runs as (the agent's own user). */
    public static long processUid() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        } catch (IOException | RuntimeException | Error e) {
            return -1;
        }
    }

    /** The policy that ships: root and the agent's own user may do everything, others may only read. */
    public static Policy builtinDefault(long agentUid) {
        return resource(DEFAULT_RESOURCE, agentUid, Idl.control());
    }

    /**
     * The policy in class-path resource {@code resource}, over the methods of {@code idl}: a built-in default.
     *
     * @throws IllegalStateException if it is missing or broken: a build problem
     */
    public static Policy resource(String resource, long agentUid, Idl idl) {
        try (InputStream in = Policy.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("the default policy " + resource + " is missing from the class path; rebuild Interlayer");
            }
            String name = resource.substring(resource.lastIndexOf('/') + 1);
            return parse(name, new String(in.readAllBytes(), StandardCharsets.UTF_8), agentUid, idl);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the default policy: " + e, e);
        } catch (YamlException e) {
            throw new IllegalStateException("the default policy is broken: " + e.getMessage(), e);
        }
    }

    /** Reads a policy file for the agent's control IDL. */
    public static Policy load(Path file, long agentUid) throws YamlException {
        return load(file, agentUid, Idl.control());
    }

    /** Reads a policy file whose rules name the methods of {@code idl}. */
    public static Policy load(Path file, long agentUid, Idl idl) throws YamlException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new YamlException(file + ": cannot read the policy file: " + e.getMessage() + "; check the path in agent.control.policy");
        }
        return parse(file.toString(), text, agentUid, idl);
    }

    /**
     * Parses a policy.
     *
     * @throws YamlException naming {@code source:line} and what to fix
     */
    public static Policy parse(String source, String text, long agentUid) throws YamlException {
        return parse(source, text, agentUid, Idl.control());
    }

    /**
     * Parses a policy whose rules name the methods of {@code idl}.
     *
     * @throws YamlException naming {@code source:line} and what to fix
     */
    public static Policy parse(String source, String text, long agentUid, Idl idl) throws YamlException {
        Node root = Yamls.parse(source, text);
        Yamls.onlyKeys(source, root, "the policy", TOP_KEYS);
        Map<String, Node> top = Yamls.map(source, root, "the policy");
        if (!top.containsKey("rules")) {
            throw Yamls.error(source, root, "the policy has no 'rules:' list; add at least one rule (see docs/control-plane.md)");
        }
        List<Rule> rules = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        for (Node rn : Yamls.list(source, top.get("rules"), "rules")) {
            Rule r = rule(source, rn, agentUid, idl);
            if (!names.add(r.name())) {
                throw Yamls.error(source, rn, "rule name '" + r.name() + "' is used twice; rule names must be unique (they are reported in denials)");
            }
            rules.add(r);
        }
        return new Policy(source, List.copyOf(rules), agentUid, idl);
    }

    private static Rule rule(String source, Node n, long agentUid, Idl idl) throws YamlException {
        Yamls.onlyKeys(source, n, "a rule", RULE_KEYS);
        Map<String, Node> m = Yamls.map(source, n, "a rule");
        if (!m.containsKey("name")) {
            throw Yamls.error(source, n, "the rule has no name; add 'name: ...' (it is reported in every decision it makes)");
        }
        String name = Yamls.scalar(source, m.get("name"), "name");
        if (!RULE_NAME.matcher(name).matches()) {
            throw Yamls.error(source, m.get("name"), "rule name '" + name + "' must match " + RULE_NAME.pattern());
        }
        String what = "rule '" + name + "'";
        if (!m.containsKey("decision")) {
            throw Yamls.error(source, n, what + " has no decision; add 'decision: granted' or 'decision: denied'");
        }
        String d = Yamls.scalar(source, m.get("decision"), what + ".decision");
        boolean grant = switch (d) {
            case "granted" -> true;
            case "denied" -> false;
            default -> throw Yamls.error(source, m.get("decision"), what + ": decision must be granted or denied, got '" + d + "'");
        };
        Set<Kind> on = EnumSet.of(Kind.REQUEST);
        if (m.containsKey("on")) {
            String o = Yamls.scalar(source, m.get("on"), what + ".on");
            on = switch (o) {
                case "request" -> EnumSet.of(Kind.REQUEST);
                case "response" -> EnumSet.of(Kind.RESPONSE);
                case "both" -> EnumSet.allOf(Kind.class);
                default -> throw Yamls.error(source, m.get("on"), what + ": on must be request, response or both, got '" + o + "'");
            };
        }
        Globs endpoints = globs(source, m.get("endpoint"), what + ".endpoint");
        Globs methods = globs(source, m.get("method"), what + ".method");
        List<Idl.Method> matched = new ArrayList<>();
        for (Idl.Method x : idl.methods()) {
            if (endpoints.matches(x.endpoint()) && methods.matches(x.name())) {
                matched.add(x);
            }
        }
        if (matched.isEmpty()) {
            List<String> all = idl.methods().stream().map(Idl.Method::id).toList();
            throw Yamls.error(source, m.containsKey("method") ? m.get("method") : m.get("endpoint"), what
                    + ": endpoint " + endpoints.texts() + " and method " + methods.texts() + " match no method of the IDL; the methods are "
                    + String.join(", ", all));
        }
        CallerMatch caller = caller(source, m.get("caller"), what, agentUid);
        List<FieldMatch> fields = new ArrayList<>();
        if (m.containsKey("fields")) {
            Map<String, Node> keys = Yamls.keys(m.get("fields"));
            for (Map.Entry<String, Node> f : Yamls.map(source, m.get("fields"), what + ".fields").entrySet()) {
                for (Idl.Method x : matched) {
                    for (Kind k : on) {
                        Descriptor type = k == Kind.REQUEST ? x.descriptor().getInputType() : x.descriptor().getOutputType();
                        String problem = checkPath(type, f.getKey());
                        if (problem != null) {
                            throw Yamls.error(source, keys.get(f.getKey()), what + ": fields." + f.getKey() + ": " + problem + " in the " + k.word()
                                    + " of " + x.id() + " (" + type.getName() + "); narrow endpoint/method/on to calls that have it");
                        }
                    }
                }
                List<String> values = Yamls.scalars(source, f.getValue(), what + ".fields." + f.getKey());
                List<Pattern> patterns = new ArrayList<>();
                for (String v : values) {
                    patterns.add(glob(v));
                }
                fields.add(new FieldMatch(f.getKey(), List.copyOf(values), List.copyOf(patterns)));
            }
        }
        String reason = m.containsKey("reason") ? Yamls.scalar(source, m.get("reason"), what + ".reason") : null;
        return new Rule(name, Yamls.line(n), on, caller, endpoints, methods, List.copyOf(fields), grant, reason);
    }

    private static CallerMatch caller(String source, Node n, String what, long agentUid) throws YamlException {
        if (n == null) {
            Globs any = new Globs(List.of(), List.of());
            return new CallerMatch(any, null, null, any, any, any, any, any, new AttributeMatch(Map.of()));
        }
        Yamls.onlyKeys(source, n, what + ".caller", CALLER_KEYS);
        Map<String, Node> m = Yamls.map(source, n, what + ".caller");
        Globs transport = globs(source, m.get("transport"), what + ".caller.transport");
        for (String t : transport.texts()) {
            if (!t.equals(Caller.UDS) && !t.equals(Caller.ATTACH) && !t.equals(Caller.TLS) && !t.equals(Caller.HTTP)) {
                throw Yamls.error(source, m.get("transport"), what + ".caller.transport: " + t + " is not a transport; use uds, attach, tls or http");
            }
        }
        Globs subject = globs(source, m.get("subject"), what + ".caller.subject");
        for (String t : subject.texts()) {
            String problem = subjectPatternProblem(t);
            if (problem != null) {
                throw Yamls.error(source, m.get("subject"), what + ".caller.subject: " + problem);
            }
        }
        Map<String, Globs> attributes = new LinkedHashMap<>();
        for (String a : SUBJECT_ATTRIBUTES) {
            if (m.containsKey(a)) {
                attributes.put(a, globs(source, m.get(a), what + ".caller." + a));
            }
        }
        return new CallerMatch(transport, numbers(source, m.get("uid"), what + ".caller.uid", agentUid),
                numbers(source, m.get("gid"), what + ".caller.gid", -2),
                globs(source, m.get("user"), what + ".caller.user"), globs(source, m.get("command"), what + ".caller.command"),
                globs(source, m.get("exe"), what + ".caller.exe"), subject, globs(source, m.get("san"), what + ".caller.san"),
                new AttributeMatch(Map.copyOf(attributes)));
    }

    /**
     * Null if a {@code subject} pattern names at most one attribute; else why it is refused and how to
     * rewrite it. Tools write a subject's attributes in different orders ({@code openssl req -subj
     * "/CN=a/O=b"} gives the subject {@code O=b,CN=a}), so a pattern over several attributes such as
     * {@code CN=a,*} may silently never match; rules name the attributes instead.
     */
    static String subjectPatternProblem(String pattern) {
        List<String> parts = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '\\' && i + 1 < pattern.length()) {
                cur.append(c).append(pattern.charAt(++i));
            } else if (c == ',' || c == '+') {
                parts.add(cur.toString().strip());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        parts.add(cur.toString().strip());
        if (parts.size() == 1) {
            return null;
        }
        List<String> keys = new ArrayList<>();
        for (String p : parts) {
            int eq = p.indexOf('=');
            String type = eq > 0 ? p.substring(0, eq).strip().toLowerCase(Locale.ROOT) : "";
            if (p.equals("*")) {
                continue;
            }
            if (!SUBJECT_ATTRIBUTES.contains(type)) {
                keys = null;
                break;
            }
            String v = p.substring(eq + 1).strip();
            keys.add(type + ": " + (v.isEmpty() || v.contains(":") || v.contains("*") ? "\"" + v + "\"" : v));
        }
        return "'" + pattern + "' names several attributes, and its match depends on the order in which the certificate lists them,"
                + " which differs between tools (openssl req -subj \"/CN=a/O=b\" makes the subject O=b,CN=a), so it may never match;"
                + " match the attributes by name instead"
                + (keys == null || keys.isEmpty() ? " (caller keys " + String.join(", ", SUBJECT_ATTRIBUTES) + ")"
                        : ": replace subject with " + String.join(", ", keys) + " in the rule's caller")
                + " (docs/control-plane.md, \"Policy language\")";
    }

    private static Numbers numbers(String source, Node n, String what, long agent) throws YamlException {
        if (n == null) {
            return null;
        }
        List<long[]> ranges = new ArrayList<>();
        for (String v : Yamls.scalars(source, n, what)) {
            String s = v.strip();
            if (s.equals("agent") && agent != -2) {
                ranges.add(new long[] {agent, agent});
                continue;
            }
            try {
                int dash = s.indexOf('-', 1);
                if (dash > 0) {
                    long lo = Long.parseLong(s.substring(0, dash).strip());
                    long hi = Long.parseLong(s.substring(dash + 1).strip());
                    if (lo < 0 || hi < lo) {
                        throw Yamls.error(source, n, what + ": range " + s + " must be LOW-HIGH with 0 <= LOW <= HIGH");
                    }
                    ranges.add(new long[] {lo, hi});
                } else {
                    long x = Long.parseLong(s);
                    if (x < 0) {
                        throw Yamls.error(source, n, what + ": " + s + " is negative; ids are 0 or more");
                    }
                    ranges.add(new long[] {x, x});
                }
            } catch (NumberFormatException e) {
                throw Yamls.error(source, n, what + ": '" + s + "' is not a number, a range LOW-HIGH" + (agent != -2 ? " or the word agent" : ""));
            }
        }
        return new Numbers(List.copyOf(ranges));
    }

    private static Globs globs(String source, Node n, String what) throws YamlException {
        if (n == null) {
            return new Globs(List.of(), List.of());
        }
        List<String> texts = Yamls.scalars(source, n, what);
        List<Pattern> ps = new ArrayList<>();
        for (String t : texts) {
            if (t.isEmpty()) {
                throw Yamls.error(source, n, what + ": an empty pattern matches nothing; remove it or write '*'");
            }
            ps.add(glob(t));
        }
        return new Globs(List.copyOf(texts), List.copyOf(ps));
    }

    /** A shell-style pattern as a regular expression: {@code *} any text, {@code ?} one character, the rest literal. */
    static Pattern glob(String g) {
        StringBuilder b = new StringBuilder();
        StringBuilder lit = new StringBuilder();
        for (int i = 0; i < g.length(); i++) {
            char c = g.charAt(i);
            if (c == '*' || c == '?') {
                if (!lit.isEmpty()) {
                    b.append(Pattern.quote(lit.toString()));
                    lit.setLength(0);
                }
                b.append(c == '*' ? ".*" : ".");
            } else {
                lit.append(c);
            }
        }
        if (!lit.isEmpty()) {
            b.append(Pattern.quote(lit.toString()));
        }
        return Pattern.compile(b.toString(), Pattern.DOTALL);
    }

    /** Null if {@code path} names a matchable field of {@code type}, else what is wrong. */
    static String checkPath(Descriptor type, String path) {
        Descriptor t = type;
        String[] parts = path.split("\\.", -1);
        for (int i = 0; i < parts.length; i++) {
            FieldDescriptor f = t.findFieldByName(parts[i]);
            if (f == null) {
                List<String> names = t.getFields().stream().map(FieldDescriptor::getName).toList();
                return "no field '" + parts[i] + "'" + (names.isEmpty() ? " (the message has no fields)" : " (fields: " + String.join(", ", names) + ")");
            }
            if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
                if (f.isMapField()) {
                    return "'" + parts[i] + "' is a map; rules cannot match maps";
                }
                if (i == parts.length - 1) {
                    return "'" + parts[i] + "' is a message; name one of its fields (" + parts[i] + ".x)";
                }
                t = f.getMessageType();
            } else if (i != parts.length - 1) {
                return "'" + parts[i] + "' is not a message; it has no field '" + parts[i + 1] + "'";
            } else if (f.getJavaType() == FieldDescriptor.JavaType.BYTE_STRING) {
                return "'" + parts[i] + "' is bytes; rules cannot match bytes";
            }
        }
        return null;
    }

    /** Collects the values at {@code path} as text (enum names, decimal numbers, true/false). */
    static void collect(Message m, String[] path, int i, List<String> out) {
        FieldDescriptor f = m.getDescriptorForType().findFieldByName(path[i]);
        if (f == null) {
            return;
        }
        List<Object> values = new ArrayList<>();
        if (f.isRepeated()) {
            for (int k = 0; k < m.getRepeatedFieldCount(f); k++) {
                values.add(m.getRepeatedField(f, k));
            }
        } else if (f.getJavaType() != FieldDescriptor.JavaType.MESSAGE || m.hasField(f)) {
            values.add(m.getField(f));
        }
        for (Object v : values) {
            if (i < path.length - 1) {
                if (v instanceof Message sub) {
                    collect(sub, path, i + 1, out);
                }
            } else {
                out.add(text(f, v));
            }
        }
    }

    private static String text(FieldDescriptor f, Object v) {
        if (v instanceof EnumValueDescriptor e) {
            return e.getName();
        }
        if (v instanceof ByteString) {
            return "";
        }
        if (f.getType() == FieldDescriptor.Type.UINT64 || f.getType() == FieldDescriptor.Type.FIXED64) {
            return Long.toUnsignedString((Long) v);
        }
        if (f.getType() == FieldDescriptor.Type.UINT32 || f.getType() == FieldDescriptor.Type.FIXED32) {
            return Integer.toUnsignedString((Integer) v);
        }
        return String.valueOf(v);
    }

    /** A rule value against an actual value: numeric range {@code N-M} for numbers, else the glob. */
    private static boolean valueMatches(String rule, Pattern glob, String actual) {
        int dash = rule.indexOf('-', 1);
        if (dash > 0 && isNumber(actual)) {
            try {
                long lo = Long.parseLong(rule.substring(0, dash).strip());
                long hi = Long.parseLong(rule.substring(dash + 1).strip());
                long a = Long.parseLong(actual);
                return a >= lo && a <= hi;
            } catch (NumberFormatException e) {
                // not a range: fall through to the glob
            }
        }
        return glob.matcher(actual).matches();
    }

    private static boolean isNumber(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (int i = s.charAt(0) == '-' ? 1 : 0; i < s.length(); i++) {
            if (!Character.isDigit(s.charAt(i))) {
                return false;
            }
        }
        return s.length() > (s.charAt(0) == '-' ? 1 : 0);
    }
}
