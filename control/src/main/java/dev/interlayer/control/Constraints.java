package dev.interlayer.control;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.Message;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.yaml.snakeyaml.nodes.Node;

/**
 * The structure constraints of the control IDL, declared in {@code constraints.yaml} beside
 * {@code control.proto}: required fields, sizes, formats, allowed enum values, and the message order of
 * client-streaming calls. The security module checks every request and response against them before any
 * policy rule runs.
 *
 * <p>Loading checks the file against the IDL itself: a message, field, oneof, enum value or format
 * that does not exist is an error naming {@code file:line}, so the constraints cannot silently drift
 * from the IDL. Besides the declared constraints every message is refused if it carries fields that are
 * not in the IDL (unknown field numbers) or enum numbers the IDL does not define.
 *
 * <p>Immutable and thread-safe once loaded.
 *
 * <pre>{@code
 * Constraints c = Constraints.builtin();
 * c.check(SetStateRequest.newBuilder().setName("Bad Name").build())
 *  // -> Optional[field 'name': must match format module-name ([a-z0-9][a-z0-9._-]{0,63}); got "Bad Name"]
 * }</pre>
 */
public final class Constraints {

    /** Where the built-in constraints live on the class path (copied from the proto folder). */
    public static final String RESOURCE = "/interlayer/control/v1/constraints.yaml";

    private static final List<String> TOP_KEYS = List.of("defaults", "formats", "messages", "streams");
    private static final List<String> FIELD_KEYS = List.of("required", "format", "pattern", "min-length", "max-length", "max-bytes", "min", "max",
            "enum", "max-items");
    private static final List<String> DEFAULT_KEYS = List.of("max-length", "max-bytes", "max-items");
    private static final List<String> STREAM_KEYS = List.of("first", "rest", "max-total-bytes");

    /**
     * One broken constraint.
     *
     * @param field the field's path in the message ({@code header.file_name}, {@code modules[2]}), or empty for the whole message
     * @param constraint the constraint's name ({@code required}, {@code format}, {@code max-bytes}, ...)
     * @param message what is wrong, naming the field, the constraint and (shortened) the value
     */
    public record Violation(String field, String constraint, String message) {
        @Override
        public String toString() {
            return message;
        }
    }

    /** The checks of one field. Null/negative members are "not set". */
    record FieldRule(boolean required, String formatName, Pattern format, int minLength, int maxLength, int maxBytes, Long min, Long max,
                     Set<String> enumValues, int maxItems) {}

    /**
     * The message order of a client-streaming call.
     *
     * @param first the oneof member the first message must set
     * @param rest the oneof member every later message must set
     * @param maxTotalBytes the most bytes the {@code rest} members may carry together
     */
    public record StreamRule(String first, String rest, long maxTotalBytes) {}

    private final String source;
    private final int defaultMaxLength;
    private final int defaultMaxBytes;
    private final int defaultMaxItems;
    private final Map<String, Map<String, FieldRule>> rules; // message full name -> field or oneof name -> rule
    private final Map<String, StreamRule> streams;           // Endpoint.Method -> rule
    private final int smallestDefault;
    private final Map<Descriptor, List<FieldDescriptor>> interesting = new java.util.concurrent.ConcurrentHashMap<>();

    private Constraints(String source, int maxLength, int maxBytes, int maxItems, Map<String, Map<String, FieldRule>> rules,
                        Map<String, StreamRule> streams) {
        this.source = source;
        this.defaultMaxLength = maxLength;
        this.defaultMaxBytes = maxBytes;
        this.defaultMaxItems = maxItems;
        this.rules = rules;
        this.streams = streams;
        this.smallestDefault = Math.min(maxLength, Math.min(maxBytes, maxItems));
    }

    /** The constraints that ship with the agent's control IDL. */
    public static Constraints builtin() {
        return resource(RESOURCE, Idl.control());
    }

    /**
     * The constraints in class-path resource {@code resource}, written against {@code idl} (each IDL ships its
     * {@code constraints.yaml} beside its {@code .proto}).
     *
     * @throws IllegalStateException if the resource is missing or does not match the IDL: a build problem
     */
    public static Constraints resource(String resource, Idl idl) {
        try (InputStream in = Constraints.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("the constraints " + resource + " are missing from the class path; rebuild Interlayer");
            }
            return parse("constraints.yaml", new String(in.readAllBytes(), StandardCharsets.UTF_8), idl);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + resource + ": " + e, e);
        } catch (YamlException e) {
            throw new IllegalStateException("the constraints " + resource + " do not match the IDL " + idl.fileName() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Parses constraints written against {@code idl}.
     *
     * @throws YamlException naming file:line for every kind of mistake (unknown message, field, key, format, enum value)
     */
    static Constraints parse(String source, String text, Idl methods) throws YamlException {
        FileDescriptor idl = methods.file();
        Node root = Yamls.parse(source, text);
        Map<String, Node> top = Yamls.map(source, root, "the constraints file");
        Yamls.onlyKeys(source, root, "the constraints file", TOP_KEYS);
        int maxLength = 4096;
        int maxBytes = 65536;
        int maxItems = 100000;
        if (top.containsKey("defaults")) {
            Node d = top.get("defaults");
            Map<String, Node> dm = Yamls.map(source, d, "defaults");
            Yamls.onlyKeys(source, d, "defaults", DEFAULT_KEYS);
            if (dm.containsKey("max-length")) maxLength = positive(source, dm.get("max-length"), "defaults.max-length");
            if (dm.containsKey("max-bytes")) maxBytes = positive(source, dm.get("max-bytes"), "defaults.max-bytes");
            if (dm.containsKey("max-items")) maxItems = positive(source, dm.get("max-items"), "defaults.max-items");
        }
        Map<String, Pattern> formats = new LinkedHashMap<>();
        if (top.containsKey("formats")) {
            for (Map.Entry<String, Node> e : Yamls.map(source, top.get("formats"), "formats").entrySet()) {
                String re = Yamls.scalar(source, e.getValue(), "format " + e.getKey());
                try {
                    formats.put(e.getKey(), Pattern.compile(re));
                } catch (PatternSyntaxException ex) {
                    throw Yamls.error(source, e.getValue(), "format " + e.getKey() + " is not a valid regular expression: " + ex.getDescription());
                }
            }
        }
        Map<String, Map<String, FieldRule>> rules = new HashMap<>();
        if (top.containsKey("messages")) {
            Map<String, Node> keys = Yamls.keys(top.get("messages"));
            for (Map.Entry<String, Node> e : Yamls.map(source, top.get("messages"), "messages").entrySet()) {
                Descriptor type = findMessage(idl, e.getKey());
                if (type == null) {
                    throw Yamls.error(source, keys.get(e.getKey()), "message " + e.getKey() + " is not in the IDL " + idl.getName()
                            + "; use the full name, e.g. " + idl.getPackage() + "." + idl.getMessageTypes().get(0).getName());
                }
                Map<String, FieldRule> fieldRules = new HashMap<>();
                Map<String, Node> fkeys = Yamls.keys(e.getValue());
                for (Map.Entry<String, Node> f : Yamls.map(source, e.getValue(), e.getKey()).entrySet()) {
                    fieldRules.put(f.getKey(), fieldRule(source, type, f.getKey(), fkeys.get(f.getKey()), f.getValue(), formats));
                }
                rules.put(type.getFullName(), Map.copyOf(fieldRules));
            }
        }
        Map<String, StreamRule> streams = new HashMap<>();
        if (top.containsKey("streams")) {
            Map<String, Node> keys = Yamls.keys(top.get("streams"));
            for (Map.Entry<String, Node> e : Yamls.map(source, top.get("streams"), "streams").entrySet()) {
                Idl.Method m = methods.method(e.getKey());
                if (m == null || !m.descriptor().isClientStreaming()) {
                    throw Yamls.error(source, keys.get(e.getKey()), "streams: " + e.getKey() + " is not a client-streaming method of the IDL"
                            + " (write Endpoint.Method, e.g. Modules.Load)");
                }
                Yamls.onlyKeys(source, e.getValue(), "streams." + e.getKey(), STREAM_KEYS);
                Map<String, Node> sm = Yamls.map(source, e.getValue(), "streams." + e.getKey());
                Descriptor in = m.descriptor().getInputType();
                String first = member(source, in, sm.get("first"), "first");
                String rest = member(source, in, sm.get("rest"), "rest");
                long total = sm.containsKey("max-total-bytes") ? Yamls.integer(source, sm.get("max-total-bytes"), "max-total-bytes") : Long.MAX_VALUE;
                streams.put(e.getKey(), new StreamRule(first, rest, total));
            }
        }
        return new Constraints(source, maxLength, maxBytes, maxItems, Map.copyOf(rules), Map.copyOf(streams));
    }

    private static String member(String source, Descriptor in, Node n, String key) throws YamlException {
        if (n == null) {
            return null;
        }
        String name = Yamls.scalar(source, n, key);
        FieldDescriptor f = in.findFieldByName(name);
        if (f == null || f.getContainingOneof() == null) {
            throw Yamls.error(source, n, key + ": " + name + " is not a oneof member of " + in.getName());
        }
        return name;
    }

    private static int positive(String source, Node n, String what) throws YamlException {
        long v = Yamls.integer(source, n, what);
        if (v < 1 || v > Integer.MAX_VALUE) {
            throw Yamls.error(source, n, what + " must be between 1 and " + Integer.MAX_VALUE);
        }
        return (int) v;
    }

    private static Descriptor findMessage(FileDescriptor idl, String fullName) {
        for (Descriptor d : Idl.allMessages(idl)) {
            if (d.getFullName().equals(fullName)) {
                return d;
            }
        }
        return null;
    }

    private static FieldRule fieldRule(String source, Descriptor type, String name, Node keyNode, Node n, Map<String, Pattern> formats)
            throws YamlException {
        String what = type.getName() + "." + name;
        FieldDescriptor f = type.findFieldByName(name);
        OneofDescriptor oneof = null;
        if (f == null) {
            for (OneofDescriptor o : type.getRealOneofs()) {
                if (o.getName().equals(name)) {
                    oneof = o;
                }
            }
            if (oneof == null) {
                List<String> names = new ArrayList<>();
                type.getFields().forEach(x -> names.add(x.getName()));
                type.getRealOneofs().forEach(x -> names.add(x.getName()));
                throw Yamls.error(source, keyNode, type.getFullName() + " has no field '" + name + "'; its fields are " + String.join(", ", names));
            }
        }
        Yamls.onlyKeys(source, n, what, FIELD_KEYS);
        Map<String, Node> m = Yamls.map(source, n, what);
        if (oneof != null && !m.keySet().equals(Set.of("required"))) {
            throw Yamls.error(source, n, what + " is a oneof: only 'required' applies to it");
        }
        boolean required = m.containsKey("required") && Yamls.bool(source, m.get("required"), what + ".required");
        String formatName = null;
        Pattern format = null;
        if (m.containsKey("format")) {
            formatName = Yamls.scalar(source, m.get("format"), what + ".format");
            format = formats.get(formatName);
            if (format == null) {
                throw Yamls.error(source, m.get("format"), what + ": unknown format '" + formatName + "'; formats: " + String.join(", ", formats.keySet()));
            }
        }
        if (m.containsKey("pattern")) {
            String re = Yamls.scalar(source, m.get("pattern"), what + ".pattern");
            try {
                format = Pattern.compile(re);
                formatName = "pattern";
            } catch (PatternSyntaxException ex) {
                throw Yamls.error(source, m.get("pattern"), what + ".pattern is not a valid regular expression: " + ex.getDescription());
            }
        }
        FieldDescriptor.JavaType jt = f == null ? null : f.getJavaType();
        if (format != null || m.containsKey("min-length") || m.containsKey("max-length")) {
            requireType(source, n, what, jt, FieldDescriptor.JavaType.STRING, "format, pattern, min-length and max-length apply to string fields");
        }
        if (m.containsKey("max-bytes")) {
            requireType(source, n, what, jt, FieldDescriptor.JavaType.BYTE_STRING, "max-bytes applies to bytes fields");
        }
        if (m.containsKey("min") || m.containsKey("max")) {
            if (jt != FieldDescriptor.JavaType.INT && jt != FieldDescriptor.JavaType.LONG) {
                throw Yamls.error(source, n, what + ": min and max apply to integer fields");
            }
        }
        if (m.containsKey("max-items") && (f == null || !f.isRepeated())) {
            throw Yamls.error(source, n, what + ": max-items applies to repeated fields");
        }
        Set<String> enums = null;
        if (m.containsKey("enum")) {
            requireType(source, n, what, jt, FieldDescriptor.JavaType.ENUM, "enum applies to enum fields");
            List<String> values = Yamls.scalars(source, m.get("enum"), what + ".enum");
            for (String v : values) {
                if (f.getEnumType().findValueByName(v) == null) {
                    List<String> known = new ArrayList<>();
                    f.getEnumType().getValues().forEach(x -> known.add(x.getName()));
                    throw Yamls.error(source, m.get("enum"), what + ": " + v + " is not a value of " + f.getEnumType().getName() + " (" + String.join(", ", known) + ")");
                }
            }
            enums = Set.copyOf(values);
        }
        return new FieldRule(required, formatName, format,
                m.containsKey("min-length") ? positiveOrZero(source, m.get("min-length"), what) : -1,
                m.containsKey("max-length") ? positiveOrZero(source, m.get("max-length"), what) : -1,
                m.containsKey("max-bytes") ? positiveOrZero(source, m.get("max-bytes"), what) : -1,
                m.containsKey("min") ? Yamls.integer(source, m.get("min"), what + ".min") : null,
                m.containsKey("max") ? Yamls.integer(source, m.get("max"), what + ".max") : null,
                enums,
                m.containsKey("max-items") ? positiveOrZero(source, m.get("max-items"), what) : -1);
    }

    private static int positiveOrZero(String source, Node n, String what) throws YamlException {
        long v = Yamls.integer(source, n, what);
        if (v < 0 || v > Integer.MAX_VALUE) {
            throw Yamls.error(source, n, what + ": must be between 0 and " + Integer.MAX_VALUE);
        }
        return (int) v;
    }

    private static void requireType(String source, Node n, String what, FieldDescriptor.JavaType actual, FieldDescriptor.JavaType wanted,
                                    String rule) throws YamlException {
        if (actual != wanted) {
            throw Yamls.error(source, n, what + ": " + rule + " (this field is " + (actual == null ? "a oneof" : actual.name().toLowerCase()) + ")");
        }
    }

    /** Where the constraints came from. */
    public String source() {
        return source;
    }

    /** The stream rule of {@code Endpoint.Method}, if it is client-streaming and has one. */
    public Optional<StreamRule> stream(String endpointMethod) {
        return Optional.ofNullable(streams.get(endpointMethod));
    }

    /**
     * Checks one message and everything nested in it; returns the first broken constraint, or empty when
     * the message is well-formed. Never throws on any message of the IDL.
     */
    public Optional<Violation> check(Message message) {
        // A message whose whole encoding is no longer than the smallest default limit cannot break a default
        // limit anywhere inside it (a string has at least as many bytes as characters), so only the fields
        // with declared constraints, enums and nested messages need a look. The size is memoized by protobuf
        // and reused when the message is sent.
        boolean small = message.getSerializedSize() <= smallestDefault;
        return Optional.ofNullable(check(message, "", small));
    }

    /** The fields of a type that can break something even when the message is small (see {@link #check(Message)}). */
    private List<FieldDescriptor> interesting(Descriptor type) {
        return interesting.computeIfAbsent(type, t -> {
            Map<String, FieldRule> mine = rules.getOrDefault(t.getFullName(), Map.of());
            List<FieldDescriptor> out = new ArrayList<>();
            for (FieldDescriptor f : t.getFields()) {
                if (mine.containsKey(f.getName()) || f.getJavaType() == FieldDescriptor.JavaType.ENUM
                        || f.getJavaType() == FieldDescriptor.JavaType.MESSAGE
                        || f.getType() == FieldDescriptor.Type.UINT64 || f.getType() == FieldDescriptor.Type.FIXED64) {
                    out.add(f);
                }
            }
            return List.copyOf(out);
        });
    }

    private Violation check(Message m, String prefix, boolean small) {
        Descriptor type = m.getDescriptorForType();
        if (!m.getUnknownFields().asMap().isEmpty()) {
            int number = m.getUnknownFields().asMap().keySet().iterator().next();
            return new Violation(prefix, "known-fields", where(prefix, type) + "carries field number " + number + " in a form " + type.getName()
                    + " does not define (no such field, or another wire type): the message does not match the IDL"
                    + " (is the client built from another version of control.proto?)");
        }
        Map<String, FieldRule> mine = rules.getOrDefault(type.getFullName(), Map.of());
        for (OneofDescriptor o : type.getRealOneofs()) {
            FieldRule r = mine.get(o.getName());
            if (r != null && r.required() && !m.hasOneof(o)) {
                List<String> members = new ArrayList<>();
                o.getFields().forEach(x -> members.add(x.getName()));
                return new Violation(prefix + o.getName(), "required", "field '" + prefix + o.getName() + "' is required: set one of "
                        + String.join(", ", members));
            }
        }
        for (FieldDescriptor f : small ? interesting(type) : type.getFields()) {
            FieldRule r = mine.get(f.getName());
            String path = prefix + f.getName();
            if (f.isRepeated()) {
                int n = m.getRepeatedFieldCount(f);
                int maxItems = r != null && r.maxItems() >= 0 ? r.maxItems() : defaultMaxItems;
                if (n > maxItems) {
                    return new Violation(path, "max-items", "field '" + path + "' has " + n + " items; at most " + maxItems + " are allowed (max-items)");
                }
                if (r != null && r.required() && n == 0) {
                    return new Violation(path, "required", "field '" + path + "' is required: give at least one item");
                }
                for (int i = 0; i < n; i++) {
                    Violation v = value(f, r, m.getRepeatedField(f, i), path + "[" + i + "]", small);
                    if (v != null) {
                        return v;
                    }
                }
                continue;
            }
            boolean present = f.hasPresence() ? m.hasField(f) : !isDefault(f, m.getField(f));
            if (!present) {
                if (r != null && r.required()) {
                    return new Violation(path, "required", "field '" + path + "' is required" + hint(f, r));
                }
                continue;
            }
            Violation v = value(f, r, m.getField(f), path, small);
            if (v != null) {
                return v;
            }
        }
        return null;
    }

    private static String where(String prefix, Descriptor type) {
        return prefix.isEmpty() ? "the message " : "field '" + prefix.substring(0, prefix.length() - 1) + "' ";
    }

    private static String hint(FieldDescriptor f, FieldRule r) {
        if (r.formatName() != null) {
            return " (format " + r.formatName() + ": " + r.format().pattern() + ")";
        }
        if (r.enumValues() != null) {
            return ": one of " + String.join(", ", r.enumValues().stream().sorted().toList());
        }
        if (f.getJavaType() == FieldDescriptor.JavaType.ENUM) {
            return ": a value other than " + f.getEnumType().getValues().get(0).getName();
        }
        if (r.min() != null && r.min() > 0) {
            return ": at least " + r.min();
        }
        return "";
    }

    private static boolean isDefault(FieldDescriptor f, Object v) {
        return switch (f.getJavaType()) {
            case STRING -> ((String) v).isEmpty();
            case BYTE_STRING -> ((ByteString) v).isEmpty();
            case INT -> (Integer) v == 0;
            case LONG -> (Long) v == 0L;
            case BOOLEAN -> !(Boolean) v;
            case FLOAT -> (Float) v == 0f;
            case DOUBLE -> (Double) v == 0d;
            case ENUM -> ((EnumValueDescriptor) v).getNumber() == 0;
            case MESSAGE -> false;
        };
    }

    private Violation value(FieldDescriptor f, FieldRule r, Object v, String path, boolean small) {
        switch (f.getJavaType()) {
            case MESSAGE -> {
                return check((Message) v, path + ".", small);
            }
            case STRING -> {
                String s = (String) v;
                int max = r != null && r.maxLength() >= 0 ? r.maxLength() : defaultMaxLength;
                if (s.length() > max) {
                    return new Violation(path, "max-length", "field '" + path + "' is " + s.length() + " characters long; at most " + max
                            + " are allowed (max-length)");
                }
                if (r != null && r.minLength() >= 0 && s.length() < r.minLength()) {
                    return new Violation(path, "min-length", "field '" + path + "' is " + s.length() + " characters long; at least "
                            + r.minLength() + " are required (min-length)");
                }
                if (r != null && r.format() != null && !r.format().matcher(s).matches()) {
                    return new Violation(path, "format", "field '" + path + "' must match " + (r.formatName().equals("pattern") ? "the pattern"
                            : "format " + r.formatName()) + " " + r.format().pattern() + "; got " + quote(s));
                }
                return null;
            }
            case BYTE_STRING -> {
                int size = ((ByteString) v).size();
                int max = r != null && r.maxBytes() >= 0 ? r.maxBytes() : defaultMaxBytes;
                if (size > max) {
                    return new Violation(path, "max-bytes", "field '" + path + "' has " + size + " bytes; at most " + max + " are allowed (max-bytes)");
                }
                return null;
            }
            case INT, LONG -> {
                long n = ((Number) v).longValue();
                if (f.getType() == FieldDescriptor.Type.UINT64 || f.getType() == FieldDescriptor.Type.FIXED64) {
                    if (n < 0) { // above Long.MAX_VALUE as unsigned
                        return new Violation(path, "max", "field '" + path + "' is " + Long.toUnsignedString(n) + "; at most " + Long.MAX_VALUE + " is allowed");
                    }
                }
                if (r != null && r.min() != null && n < r.min()) {
                    return new Violation(path, "min", "field '" + path + "' is " + n + "; at least " + r.min() + " is required (min)");
                }
                if (r != null && r.max() != null && n > r.max()) {
                    return new Violation(path, "max", "field '" + path + "' is " + n + "; at most " + r.max() + " is allowed (max)");
                }
                return null;
            }
            case ENUM -> {
                EnumValueDescriptor e = (EnumValueDescriptor) v;
                if (f.getEnumType().findValueByNumber(e.getNumber()) == null) {
                    return new Violation(path, "enum", "field '" + path + "' has " + e.getNumber() + ", which is not a value of "
                            + f.getEnumType().getName() + (r != null && r.enumValues() != null ? "; use one of " + String.join(", ",
                            r.enumValues().stream().sorted().toList()) : ""));
                }
                if (r != null && r.enumValues() != null && !r.enumValues().contains(e.getName())) {
                    return new Violation(path, "enum", "field '" + path + "' is " + e.getName() + "; allowed here: "
                            + String.join(", ", r.enumValues().stream().sorted().toList()));
                }
                return null;
            }
            default -> {
                return null;
            }
        }
    }

    /** The value in quotes, shortened and with control characters escaped, safe to echo in an error. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        int n = Math.min(s.length(), 48);
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || Character.isSurrogate(c)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        if (s.length() > n) {
            b.append("...");
        }
        return b.append('"').toString();
    }
}
