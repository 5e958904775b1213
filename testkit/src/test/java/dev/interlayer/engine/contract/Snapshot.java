package dev.interlayer.engine.contract;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a driver observed of a connection at one point of a {@link Scenario}: the bytes each peer received (all of
 * them, concatenated: chunk boundaries on sockets are the kernel's), how each stream ended, and each module's
 * {@link RecordingModule#entries() record}.
 *
 * @param sent what the network peer received (SEND, after the chain)
 * @param sentEnd how the SEND stream ended for the network peer
 * @param received what the local application received (RECV, after the chain)
 * @param receivedEnd how the RECV stream ended for the local application
 * @param modules each module's record, in chain order
 * @param failure what went wrong in the driver itself (an exception, a byte after the FIN), or null
 */
record Snapshot(String sent, End sentEnd, String received, End receivedEnd, Map<String, List<String>> modules, String failure) {

    /**
     * How a stream of bytes ended for the peer that reads it: not yet ({@code OPEN}), cleanly ({@code FIN}: a
     * half-close or a graceful close, which a reader cannot tell apart), or by a reset. Whatever a reader saw first
     * counts: a FIN followed by a reset is a FIN to a reader that stopped at the FIN.
     */
    enum End { OPEN, FIN, RESET }

    /**
     * The first way {@code other} differs from this snapshot, written {@code this | other}, or null if it does not.
     *
     * @param lossyOnReset {@code other} comes from real sockets, where a reset discards what the kernel had not sent
     *     yet: when both streams of a direction ended in a reset, its bytes need only be a prefix of these
     */
    String firstDifference(Snapshot other, boolean lossyOnReset) {
        if (!Objects.equals(failure, other.failure)) {
            return "failure: " + failure + " | " + other.failure;
        }
        String d = bytes("bytes to the network", sent, sentEnd, other.sent, other.sentEnd, lossyOnReset);
        if (d != null) return d;
        if (sentEnd != other.sentEnd) return "end toward the network: " + sentEnd + " | " + other.sentEnd;
        d = bytes("bytes to the application", received, receivedEnd, other.received, other.receivedEnd, lossyOnReset);
        if (d != null) return d;
        if (receivedEnd != other.receivedEnd) return "end toward the application: " + receivedEnd + " | " + other.receivedEnd;
        for (Map.Entry<String, List<String>> e : modules.entrySet()) {
            List<String> mine = e.getValue();
            List<String> theirs = other.modules.getOrDefault(e.getKey(), List.of());
            if (!mine.equals(theirs)) {
                int i = 0;
                while (i < mine.size() && i < theirs.size() && mine.get(i).equals(theirs.get(i))) i++;
                return "record of module " + e.getKey() + ", entry " + i + ": "
                        + (i < mine.size() ? mine.get(i) : "(none)") + " | " + (i < theirs.size() ? theirs.get(i) : "(none)")
                        + "\n      whole records: " + mine + "\n                   | " + theirs;
            }
        }
        return null;
    }

    private static String bytes(String what, String mine, End myEnd, String theirs, End theirEnd, boolean lossyOnReset) {
        if (mine.equals(theirs)) return null;
        if (lossyOnReset && myEnd == End.RESET && theirEnd == End.RESET && mine.startsWith(theirs)) return null;
        return what + ": \"" + mine + "\" | \"" + theirs + '"';
    }
}
