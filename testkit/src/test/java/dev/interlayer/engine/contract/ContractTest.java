package dev.interlayer.engine.contract;

import static dev.interlayer.api.Direction.RECV;
import static dev.interlayer.api.Direction.SEND;
import static dev.interlayer.api.Verdict.CLOSE;
import static dev.interlayer.api.Verdict.DETACH;
import static dev.interlayer.api.Verdict.DROP;
import static dev.interlayer.api.Verdict.HOLD;
import static dev.interlayer.api.Verdict.PASS;
import static dev.interlayer.engine.contract.ModuleScript.named;
import static dev.interlayer.engine.contract.RecordingModule.bytes;
import static dev.interlayer.engine.contract.RecordingModule.text;
import static dev.interlayer.engine.contract.Snapshot.End.FIN;
import static dev.interlayer.engine.contract.Snapshot.End.OPEN;
import static dev.interlayer.engine.contract.Snapshot.End.RESET;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Verdict;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The chain's contract, held three ways: every scenario runs through the engine on real loopback sockets, through the
 * engine's own {@code ProxyConnection} between embedded channels, and through the testkit, and must come out the same
 * after every step: the bytes each peer received, how each stream ended, and each module's record of its hook calls,
 * verdicts, timers, injects and detach. The engine is the reference; a scenario's expectations state the rule it is
 * about, so a change that breaks a rule everywhere at once fails too.
 *
 * <p>A failure names the scenario, the two drivers, the step after which they first differ and the first difference,
 * written {@code embedded | testkit}.
 */
class ContractTest {

    /** Timers are set this far ahead so that on sockets none fires before the advance step meant for it. */
    private static final Duration TIMER = Duration.ofSeconds(1);

    private static final Driver EMBEDDED = new EmbeddedDriver();
    private static final Driver TESTKIT = new TestkitDriver();
    private static final Driver SOCKETS = new SocketDriver();

    @TestFactory
    Stream<DynamicTest> everyScenarioComesOutTheSameOnSocketsOnEmbeddedChannelsAndInTheTestkit() {
        return scenarios().stream().map(s -> dynamicTest(s.name, () -> check(s)));
    }

    private static void check(Scenario s) throws Exception {
        List<Snapshot> embedded = EMBEDDED.run(s, null);
        List<Snapshot> testkit = TESTKIT.run(s, null);
        List<Snapshot> sockets = SOCKETS.run(s, embedded);
        List<String> problems = new ArrayList<>();
        unmet(s, EMBEDDED, embedded.getLast(), false, problems);
        unmet(s, TESTKIT, testkit.getLast(), false, problems);
        unmet(s, SOCKETS, sockets.getLast(), true, problems);
        differ(s, EMBEDDED, embedded, TESTKIT, testkit, false, problems);
        differ(s, EMBEDDED, embedded, SOCKETS, sockets, true, problems);
        if (!problems.isEmpty()) {
            throw new AssertionError("scenario \"" + s.name + "\":\n  " + String.join("\n  ", problems));
        }
    }

    /** Adds the first difference between two drivers' runs, with the step after which it showed. */
    private static void differ(Scenario s, Driver a, List<Snapshot> as, Driver b, List<Snapshot> bs, boolean lossy, List<String> problems) {
        for (int i = 0; i < as.size(); i++) {
            String d = as.get(i).firstDifference(bs.get(i), lossy);
            if (d != null) {
                problems.add(a.name() + " | " + b.name() + " differ after " + s.stepName(i) + ": " + d);
                return;
            }
        }
    }

    /** Adds what a driver's final snapshot misses of the scenario's expectations. */
    private static void unmet(Scenario s, Driver d, Snapshot last, boolean lossy, List<String> problems) {
        String unmet = d.name() + " does not meet the expectation: ";
        if (last.failure() != null) {
            problems.add(d.name() + " failed: " + last.failure());
        }
        if (s.expectSent != null && !same(s.expectSent, last.sent(), lossy && last.sentEnd() == RESET)) {
            problems.add(unmet + "the network received \"" + last.sent() + "\", not \"" + s.expectSent + '"');
        }
        if (s.expectReceived != null && !same(s.expectReceived, last.received(), lossy && last.receivedEnd() == RESET)) {
            problems.add(unmet + "the application received \"" + last.received() + "\", not \"" + s.expectReceived + '"');
        }
        if (s.expectSentEnd != null && s.expectSentEnd != last.sentEnd()) {
            problems.add(unmet + "the stream to the network ended " + last.sentEnd() + ", not " + s.expectSentEnd);
        }
        if (s.expectReceivedEnd != null && s.expectReceivedEnd != last.receivedEnd()) {
            problems.add(unmet + "the stream to the application ended " + last.receivedEnd() + ", not " + s.expectReceivedEnd);
        }
    }

    /** On sockets a reset may discard bytes the kernel had not sent yet: then a prefix of what was expected will do. */
    private static boolean same(String expected, String actual, boolean prefixWillDo) {
        return expected.equals(actual) || (prefixWillDo && expected.startsWith(actual));
    }

    // ---- the scenarios ------------------------------------------------------------------------------------------

    static List<Scenario> scenarios() {
        return List.of(
                Scenario.named("PASS forwards every byte unchanged both ways, and each end after them")
                        .module(named("pass", 10))
                        .send("hello").recv("world").end(SEND).end(RECV)
                        .expectSent("hello").expectReceived("world").expectEnds(FIN, FIN),

                Scenario.named("a replacement is forwarded instead of the chunk, and the next module sees it")
                        .module(named("upper", 10)
                                .onSend((c, ctx, d) -> {
                                    ctx.replace().write(bytes(text(d).toUpperCase()));
                                    return PASS;
                                })
                                .onRecv((c, ctx, d) -> {
                                    ctx.replace().write(bytes("<")).write(d).write(bytes(">"));
                                    return PASS;
                                }))
                        .module(named("after", 20))
                        .send("hello").recv("world")
                        .expectSent("HELLO").expectReceived("<world>"),

                Scenario.named("a chunk rewritten in place is forwarded as the module left it")
                        .module(named("upper", 10).onData((c, ctx, d) -> {
                            MemorySegment seg = ctx.rewrite();
                            for (long i = 0; i < seg.byteSize(); i++) {
                                seg.set(JAVA_BYTE, i, (byte) Character.toUpperCase(seg.get(JAVA_BYTE, i)));
                            }
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("hello").recv("world")
                        .expectSent("HELLO").expectReceived("WORLD"),

                Scenario.named("DROP discards the chunk and nothing else, in either direction")
                        .module(named("drop", 10)
                                .onSend((c, ctx, d) -> d.indexOf((byte) 'X') >= 0 ? DROP : PASS)
                                .onRecv((c, ctx, d) -> d.indexOf((byte) 'Y') >= 0 ? DROP : PASS))
                        .send("aaa").send("XXX").send("bbb").recv("YYY").recv("ccc")
                        .expectSent("aaabbb").expectReceived("ccc"),

                Scenario.named("HOLD keeps the chunk until a timer injects it, marked as the holder's")
                        .module(named("hold", 10).onSend((c, ctx, d) -> {
                            HeldBytes h = ctx.hold();
                            c.later(TIMER, () -> c.inject(SEND, h));
                            return HOLD;
                        }))
                        .module(named("after", 20))
                        .send("later").advance(TIMER)
                        .expectSent("later"),

                Scenario.named("an inject during a call goes on before the chunk the call passes")
                        .module(named("tagger", 10).onData((c, ctx, d) -> {
                            c.inject(ctx.direction(), ctx.direction() == SEND ? "[inj]" : "[r]");
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("data").recv("reply")
                        .expectSent("[inj]data").expectReceived("[r]reply"),

                Scenario.named("an inject from a timer goes after what the module passed before it, and before what it passes later")
                        .module(named("ticker", 10).onSend((c, ctx, d) -> {
                            if (c.count++ == 0) c.later(TIMER, () -> c.inject(SEND, "[t]"));
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("a").advance(TIMER).send("b")
                        .expectSent("a[t]b"),

                Scenario.named("NEED_MORE buffers the bytes until enough arrived, then shows them as one view")
                        .module(named("frame", 10).onSend((c, ctx, d) -> d.length() < 6 ? Verdict.needMore(6) : PASS))
                        .module(named("after", 20))
                        .send("abc").send("def")
                        .expectSent("abcdef"),

                Scenario.named("at the end of the stream onEnd gets what NEED_MORE still buffered, and the FIN follows its output")
                        .module(named("frame", 10)
                                .onSend((c, ctx, d) -> d.length() < 6 ? Verdict.needMore(6) : PASS)
                                .onEnd((c, ctx, rest) -> {
                                    if (rest.length() > 0) ctx.replace().write(rest).write(bytes("!"));
                                    return PASS;
                                }))
                        .module(named("after", 20))
                        .send("abc").end(SEND)
                        .expectSent("abc!").expectEnds(FIN, OPEN),

                Scenario.named("a chunk that completes a NEED_MORE gives the whole view its inject mark")
                        .module(named("source", 10).onSend((c, ctx, d) -> {
                            c.later(TIMER, () -> c.inject(SEND, "cd", 5));
                            return PASS;
                        }))
                        .module(named("frame", 20).onSend((c, ctx, d) -> d.length() < 4 ? Verdict.needMore(4) : PASS))
                        .module(named("after", 30))
                        .send("ab").advance(TIMER)
                        .expectSent("abcd"),

                Scenario.named("onEnd sees the NEED_MORE rest unmarked, and what it passes on is the module's own output")
                        .module(named("source", 10).onSend((c, ctx, d) -> {
                            c.inject(SEND, "ab", 3);
                            return DROP;
                        }))
                        .module(named("frame", 20).onSend((c, ctx, d) -> Verdict.needMore(10)))
                        .module(named("after", 30))
                        .send("x").end(SEND)
                        .expectSent("ab").expectEnds(FIN, OPEN),

                Scenario.named("DETACH passes the chunk and the module is never called again")
                        .module(named("once", 10).onSend((c, ctx, d) -> DETACH))
                        .module(named("after", 20))
                        .send("one").send("two").recv("three")
                        .expectSent("onetwo").expectReceived("three"),

                Scenario.named("DETACH passes on what the module held before the chunk")
                        .module(named("holder", 10).onSend((c, ctx, d) -> {
                            if (c.count++ == 0) {
                                ctx.hold();
                                return HOLD;
                            }
                            return DETACH;
                        }))
                        .module(named("after", 20))
                        .send("one").send("two")
                        .expectSent("onetwo"),

                Scenario.named("a detach the control plane requests passes on what the module held, oldest first")
                        .module(named("hold", 10).onSend((c, ctx, d) -> {
                            ctx.hold();
                            return HOLD;
                        }))
                        .module(named("after", 20))
                        .send("first").send("second").detach("hold").end(SEND)
                        .expectSent("firstsecond").expectEnds(FIN, OPEN),

                Scenario.named("a NEED_MORE buffer that a detach passes on goes on unmarked")
                        .module(named("source", 10).onSend((c, ctx, d) -> {
                            c.inject(SEND, "ab", 3);
                            return DROP;
                        }))
                        .module(named("frame", 20).onSend((c, ctx, d) -> Verdict.needMore(10)))
                        .module(named("after", 30))
                        .send("x").detach("frame")
                        .expectSent("ab"),

                Scenario.named("ERROR resets both sides")
                        .module(named("guard", 10).onSend((c, ctx, d) -> d.indexOf((byte) 'b') >= 0 ? Verdict.error(7, "bad input") : PASS))
                        .module(named("after", 20))
                        .send("ok").send("bad")
                        .expectSent("ok").expectReceived("").expectEnds(RESET, RESET),

                Scenario.named("CLOSE discards the chunk and closes both sides gracefully after what was forwarded")
                        .module(named("closer", 10).onSend((c, ctx, d) -> text(d).contains("bye") ? CLOSE : PASS))
                        .module(named("after", 20))
                        .send("hi").recv("there").send("bye")
                        .expectSent("hi").expectReceived("there").expectEnds(FIN, FIN),

                Scenario.named("a fail-open fault detaches the module and its chunk passes on")
                        .module(named("faulty", 10).onSend((c, ctx, d) -> {
                            if (text(d).contains("boom")) throw new IllegalStateException("boom");
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("ok").send("boom").send("later")
                        .expectSent("okboomlater"),

                Scenario.named("a fail-open fault passes on what the module held, then the chunk it faulted on")
                        .module(named("faulty", 10).onSend((c, ctx, d) -> {
                            if (c.count++ == 0) {
                                ctx.hold();
                                return HOLD;
                            }
                            throw new IllegalStateException("boom");
                        }))
                        .module(named("after", 20))
                        .send("held").send("boom")
                        .expectSent("heldboom"),

                Scenario.named("a fail-closed fault resets the connection")
                        .module(named("strict", 10).failClosed().onSend((c, ctx, d) -> {
                            if (text(d).contains("boom")) throw new IllegalStateException("boom");
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("ok").send("boom")
                        .expectSent("ok").expectEnds(RESET, RESET),

                Scenario.named("onEnd comes after the module's last chunk even while it holds bytes, and the FIN waits for them")
                        .module(named("hold", 10).onSend((c, ctx, d) -> {
                            HeldBytes h = ctx.hold();
                            c.later(TIMER, () -> c.inject(SEND, h));
                            return HOLD;
                        }))
                        .module(named("after", 20))
                        .send("tail").end(SEND).advance(TIMER)
                        .expectSent("tail").expectEnds(FIN, OPEN),

                Scenario.named("onEnd may hold the NEED_MORE rest; the FIN waits until it is injected")
                        .module(named("frame", 10)
                                .onSend((c, ctx, d) -> Verdict.needMore(10))
                                .onEnd((c, ctx, rest) -> {
                                    if (rest.length() == 0) return PASS;
                                    Direction dir = ctx.direction();
                                    HeldBytes h = ctx.hold();
                                    c.later(TIMER, () -> c.inject(dir, h));
                                    return HOLD;
                                }))
                        .module(named("after", 20))
                        .send("abc").end(SEND).advance(TIMER)
                        .expectSent("abc").expectEnds(FIN, OPEN),

                Scenario.named("bytes held in one direction do not hold back the end of the other")
                        .module(named("slow", 10).onRecv((c, ctx, d) -> {
                            HeldBytes h = ctx.hold();
                            c.later(TIMER, () -> c.inject(RECV, h));
                            return HOLD;
                        }))
                        .recv("reply").end(SEND).advance(TIMER)
                        .expectSent("").expectReceived("reply").expectEnds(FIN, OPEN),

                Scenario.named("an inject after the end has passed the module is refused")
                        .module(named("late", 10).onEnd((c, ctx, rest) -> {
                            if (ctx.direction() == SEND) c.later(TIMER, () -> c.inject(SEND, "late"));
                            return PASS;
                        }))
                        .module(named("after", 20))
                        .send("x").end(SEND).advance(TIMER)
                        .expectSent("x").expectEnds(FIN, OPEN),

                Scenario.named("held bytes injected into a direction whose end has passed the module are refused")
                        .module(named("cross", 10).onRecv((c, ctx, d) -> {
                            HeldBytes h = ctx.hold();
                            c.later(TIMER, () -> c.inject(SEND, h));
                            return HOLD;
                        }))
                        .module(named("slow", 20))
                        .recv("zz").end(SEND).advance(TIMER)
                        .expectSent("").expectReceived("").expectEnds(FIN, OPEN),

                Scenario.named("a module without onRecv gets no onEnd for RECV")
                        .module(named("trailer", 10).sendSideOnly().onEnd((c, ctx, rest) -> {
                            ctx.replace().write(bytes("!"));
                            return PASS;
                        }))
                        .send("a").recv("b").end(RECV)
                        .expectSent("a").expectReceived("b").expectEnds(OPEN, FIN),

                Scenario.named("connection events: CONNECTED first, a direction's SHUTDOWN once its end has passed the chain, CLOSING at the close")
                        .module(named("watch", 10).withEvents().onSend((c, ctx, d) -> {
                            HeldBytes h = ctx.hold();
                            c.later(TIMER, () -> c.inject(SEND, h));
                            return HOLD;
                        }))
                        .send("x").end(SEND).advance(TIMER).end(RECV)
                        .expectSent("x").expectEnds(FIN, FIN),

                Scenario.named("injected bytes carry the injector's name and tag to every module after it")
                        .module(named("a", 10).onSend((c, ctx, d) -> {
                            c.inject(SEND, "ping", 42);
                            return DROP;
                        }))
                        .module(named("b", 20))
                        .module(named("c", 30).onRecv((c, ctx, d) -> {
                            c.inject(RECV, "pong", 9);
                            return PASS;
                        }))
                        .send("x").recv("y")
                        .expectSent("ping").expectReceived("pongy"),

                Scenario.named("SEND passes the modules in priority order and RECV in reverse")
                        .module(appender("a", 10))
                        .module(appender("b", 20))
                        .module(appender("c", 30))
                        .send(">").recv("<")
                        .expectSent(">abc").expectReceived("<cba"));
    }

    /** Appends its name to every chunk, so the output shows the order the modules ran in. */
    private static ModuleScript appender(String name, int priority) {
        return named(name, priority).onData((c, ctx, d) -> {
            ctx.replace().write(d).write(bytes(name));
            return PASS;
        });
    }
}
