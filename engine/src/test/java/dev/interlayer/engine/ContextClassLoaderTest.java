package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.PackageRef;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every data hook runs with its own module's class loader as the thread's context class loader (docs/architecture.md), also
 * in the middle of a chain where the engine switches it from one module's straight to the next one's, and the
 * event loop has its own back once the chain is done.
 */
class ContextClassLoaderTest {

    private EngineFixture fx;

    @BeforeEach
    void start() {
        fx = new EngineFixture();
    }

    @AfterEach
    void stop() {
        fx.close();
    }

    @Test
    void eachHookOfAChainSeesItsOwnLoaderAndTheEventLoopGetsItsOwnBack() throws Exception {
        List<String> wrong = new CopyOnWriteArrayList<>();
        List<String> seen = new CopyOnWriteArrayList<>();
        List<Thread> loops = new CopyOnWriteArrayList<>();
        List<ClassLoader> loaders = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            ClassLoader own = new ClassLoader("module-" + i, getClass().getClassLoader()) {};
            loaders.add(own);
            String name = "m" + i;
            boolean rewrites = i == 1; // a replacement in the middle of the chain
            TestModule.Hook hook = (st, ctx, v) -> {
                ClassLoader cl = Thread.currentThread().getContextClassLoader();
                seen.add(name + ":" + ctx.direction());
                if (cl != own) wrong.add(name + " " + ctx.direction() + " ran with " + cl);
                loops.add(Thread.currentThread());
                if (rewrites) ctx.replace().write(v);
                return Verdict.PASS;
            };
            TestModule m = TestModule.named(name).priority(10 + i).onSend(hook).onRecv(hook);
            fx.registry.add(m, PackageRef.builtin(name, own), null);
        }
        try (TestServer up = TestServer.echo(); Socket s = EngineFixture.connect(fx.listen(Role.CLIENT, up.address()))) {
            for (int round = 0; round < 3; round++) {
                s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                assertThat(new String(s.getInputStream().readNBytes(5), StandardCharsets.US_ASCII)).isEqualTo("hello");
                // The echo came back through both chains, and the engine puts the loop's own loader back before it
                // writes: read it now, while the connection is idle (at close, onEnd and detach run module code again).
                for (Thread loop : loops) {
                    assertThat(loop.getContextClassLoader()).as("context class loader of %s after the chain", loop.getName())
                            .isNotIn(loaders);
                }
            }
        }
        assertThat(wrong).isEmpty();
        assertThat(seen).contains("m0:SEND", "m1:SEND", "m2:SEND", "m0:RECV", "m1:RECV", "m2:RECV");
    }
}
