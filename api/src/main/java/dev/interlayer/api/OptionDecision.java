package dev.interlayer.api;

/** A module's answer to a socket option being set: allow, deny, or set another value. */
public final class OptionDecision {

    /** The kind of decision. */
    public enum Kind { ALLOW, DENY, MODIFY }

    private static final OptionDecision ALLOW = new OptionDecision(Kind.ALLOW, null, null);

    private final Kind kind;
    private final Object value;
    private final String reason;

    private OptionDecision(Kind kind, Object value, String reason) {
        this.kind = kind;
        this.value = value;
        this.reason = reason;
    }

    /** Set the option as requested. */
    public static OptionDecision allow() {
        return ALLOW;
    }

    /** Do not set the option; later modules are not asked. */
    public static OptionDecision deny(String reason) {
        return new OptionDecision(Kind.DENY, null, reason == null ? "denied" : reason);
    }

    /** Set {@code value} instead (of the option's value type); later modules see the new value. */
    public static OptionDecision modify(Object value) {
        if (value == null) {
            throw new IllegalArgumentException("modify needs a value");
        }
        return new OptionDecision(Kind.MODIFY, value, null);
    }

    /** The kind of decision. */
    public Kind kind() {
        return kind;
    }

    /** For MODIFY, the value to set; else null. */
    public Object value() {
        return value;
    }

    /** For DENY, the reason; else null. */
    public String reason() {
        return reason;
    }
}
