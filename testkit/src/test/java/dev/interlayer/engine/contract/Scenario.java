package dev.interlayer.engine.contract;

import dev.interlayer.api.Direction;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * One contract scenario, written once and run by every {@link Driver}: the modules of the chain and a script of what
 * the two peers, the clock and the control plane do, with what must come out.
 *
 * <p>A driver observes the connection after every step (see {@link Snapshot}), so a step should be something a
 * driver can wait for: one chunk, one half-close, one stretch of time. Timers fire only in an {@link Advance} step
 * that covers them; on sockets real time passes between steps too (a step settles in well under a second), so a
 * timer that must not fire before its advance step is set a second or more ahead.
 *
 * <pre>{@code
 * Scenario.named("an inject during a call goes on before the chunk the call passes")
 *         .module(ModuleScript.named("tagger", 10).onSend((c, ctx, d) -> { c.inject(SEND, "[inj]"); return PASS; }))
 *         .send("data")
 *         .expectSent("[inj]data");
 * }</pre>
 */
final class Scenario {

    /** One thing the peers, the clock or the control plane do. */
    sealed interface Step permits Write, End, Advance, Detach {}

    /** A peer writes one chunk: the local application (SEND) or the network (RECV). */
    record Write(Direction direction, String text) implements Step {
        @Override
        public String toString() {
            return (direction == Direction.SEND ? "send \"" : "recv \"") + text + '"';
        }
    }

    /** The sender of {@code direction} half-closes. */
    record End(Direction direction) implements Step {
        @Override
        public String toString() {
            return "end " + direction;
        }
    }

    /** Time passes: timers due in it fire. */
    record Advance(Duration by) implements Step {
        @Override
        public String toString() {
            return "advance " + by.toMillis() + " ms";
        }
    }

    /** The control plane detaches {@code module} from the connection (reason REQUESTED). */
    record Detach(String module) implements Step {
        @Override
        public String toString() {
            return "detach " + module;
        }
    }

    final String name;
    final List<ModuleScript> modules = new ArrayList<>();
    final List<Step> steps = new ArrayList<>();
    String expectSent;
    String expectReceived;
    Snapshot.End expectSentEnd;
    Snapshot.End expectReceivedEnd;

    private Scenario(String name) {
        this.name = name;
    }

    /** A scenario; its name is the sentence the test reports, so it says what the rule is. */
    static Scenario named(String name) {
        return new Scenario(name);
    }

    Scenario module(ModuleScript m) {
        modules.add(m);
        return this;
    }

    Scenario send(String text) {
        steps.add(new Write(Direction.SEND, text));
        return this;
    }

    Scenario recv(String text) {
        steps.add(new Write(Direction.RECV, text));
        return this;
    }

    Scenario end(Direction d) {
        steps.add(new End(d));
        return this;
    }

    Scenario advance(Duration by) {
        steps.add(new Advance(by));
        return this;
    }

    Scenario detach(String module) {
        steps.add(new Detach(module));
        return this;
    }

    /** What the network peer must have received in the end (every driver). */
    Scenario expectSent(String text) {
        this.expectSent = text;
        return this;
    }

    /** What the local application must have received in the end (every driver). */
    Scenario expectReceived(String text) {
        this.expectReceived = text;
        return this;
    }

    /** How the stream toward each peer must have ended: network side (SEND), application side (RECV). */
    Scenario expectEnds(Snapshot.End sent, Snapshot.End received) {
        this.expectSentEnd = sent;
        this.expectReceivedEnd = received;
        return this;
    }

    /** The step that led to snapshot {@code i} (0 is the state right after the modules attached). */
    String stepName(int i) {
        return i == 0 ? "attach" : "step " + i + " (" + steps.get(i - 1) + ")";
    }

    @Override
    public String toString() {
        return name;
    }
}
