package dev.interlayer.testkit;

/**
 * A module broke a rule of the SDK contract; thrown by the testkit so the test fails and names the culprit.
 *
 * <p>It is an {@link AssertionError}, not an exception, so a module that catches {@code Exception} around
 * its own code cannot swallow it. Where the real engine would throw {@link IllegalStateException} (a view
 * used after its call) the testkit throws this instead, for the same reason. Every violation is also
 * recorded by the harness ({@link ModuleHarness#violations()}), so one raised on a module's own thread is
 * reported again by the next harness operation on the test thread.
 *
 * <pre>{@code
 * ContractViolation v = assertThrows(ContractViolation.class, () -> conn.send("x"));
 * assertEquals(ContractViolation.Rule.HOLD_WITHOUT_HOLD_CALL, v.rule());
 * }</pre>
 */
public final class ContractViolation extends AssertionError {

    /** The rules the testkit checks, each with the sentence it reports. */
    public enum Rule {
        /** The descriptor does not build, or does not match what the class implements or the SDK offers. */
        DESCRIPTOR("the descriptor must build and match the interfaces the class implements and the SDK's majors"),
        /**
         * The agent's verifier would refuse the module's code at load: a call that stops the JVM or reaches the agent's
         * classes, a capability not declared or not allowed ({@code ModuleHarness.allow}), an SDK call newer than the
         * interface minor the descriptor declares.
         */
        REFUSED_AT_LOAD("the agent refuses, before init, code that calls what the module may not or has not declared"),
        /** A {@code ByteView} was used after the hook call it was lent to had returned. */
        VIEW_AFTER_CALL("a ByteView is valid only during the call it was passed to"),
        /** The replacement output of {@code ctx.replace()} was used after the hook call had returned. */
        REPLACE_AFTER_CALL("the output of ctx.replace() is valid only during the call"),
        /** A {@code StreamContext} was used after the hook call it was passed to had returned. */
        CONTEXT_AFTER_CALL("a StreamContext is valid only during the call it was passed to"),
        /** The hook returned HOLD without calling {@code ctx.hold()} in the same call. */
        HOLD_WITHOUT_HOLD_CALL("Verdict.HOLD needs ctx.hold() in the same call"),
        /** The hook called {@code ctx.hold()} but returned something other than HOLD. */
        HOLD_CALL_WITHOUT_HOLD("ctx.hold() must be followed by returning Verdict.HOLD"),
        /** A hook, attach or control returned null. */
        NULL_VERDICT("a hook must return a verdict (or answer), never null"),
        /** The module reset the connection during a call, then returned a verdict that forwards or keeps bytes. */
        VERDICT_AFTER_CLOSE("after attachment.abort() in a call, only DROP, ERROR or CLOSE make sense"),
        /** A successful attach was followed by no detach, or by more than one. */
        DETACH_NOT_EXACTLY_ONCE("every successful attach gets exactly one detach"),
        /** {@code inject} would take the connection's held, buffered and queued bytes past the hold limit. */
        INJECT_BEYOND_HOLD_LIMIT("injected bytes count against the hold limit until the peer takes them"),
        /** {@code needMore(n)} asked for no more bytes than the call already had. */
        NEED_MORE_TOO_SMALL("needMore(n) must ask for more bytes than the call was given, or it would be called again at once"),
        /** {@code onEnd} returned NEED_MORE, which cannot be honoured once a direction has ended. */
        END_VERDICT("onEnd may not return NEED_MORE: no more bytes come after the end");

        private final String sentence;

        Rule(String sentence) {
            this.sentence = sentence;
        }

        /** The rule as one sentence, as it appears in the violation's message. */
        public String sentence() {
            return sentence;
        }
    }

    private final String module;
    private final Rule rule;

    /**
     * Creates a violation by {@code module} of {@code rule}.
     *
     * @param module the offending module's name
     * @param rule the rule broken
     * @param detail what exactly happened
     */
    public ContractViolation(String module, Rule rule, String detail) {
        super("module " + module + " broke rule " + rule + " (" + rule.sentence() + "): " + detail);
        this.module = module;
        this.rule = rule;
    }

    /** The name of the module that broke the rule. */
    public String module() {
        return module;
    }

    /** The rule that was broken. */
    public Rule rule() {
        return rule;
    }
}
