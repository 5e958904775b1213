package dev.interlayer.natives;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/** Closes what a test opened (agents, servers), last opened first, after each test: register it with {@code @RegisterExtension}. */
final class Closer implements AfterEachCallback {

    private final List<AutoCloseable> open = new ArrayList<>();

    /** Returns {@code c}, to be closed after the test. */
    <T extends AutoCloseable> T later(T c) {
        open.add(c);
        return c;
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        try {
            for (AutoCloseable c : open.reversed()) c.close();
        } finally {
            open.clear();
        }
    }
}
