package dev.interlayer.control.testing;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.ControlException;
import dev.interlayer.control.ControlServer;
import dev.interlayer.control.ControlSettings;
import dev.interlayer.control.ControlTarget;
import dev.interlayer.engine.testing.EngineFixture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.function.UnaryOperator;

/**
 * A real registry, engine and control endpoint on a Unix socket in a fresh folder that every user can
 * traverse (so a test can call it as another user), for tests.
 */
public final class ControlFixture implements AutoCloseable {

    public final Path dir;
    public final EngineFixture engine;
    public final ControlServer server;

    public ControlFixture() throws IOException, ControlException {
        this(s -> s);
    }

    public ControlFixture(UnaryOperator<ControlSettings> settings) throws IOException, ControlException {
        dir = Files.createTempDirectory("interlayer-control-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        engine = new EngineFixture();
        ControlServer s;
        try {
            s = ControlServer.start(settings.apply(ControlSettings.at(dir.resolve("control.sock"))),
                    new ControlTarget(engine.registry, engine.engine, name -> null, dir.resolve("uploads"), "test"));
        } catch (ControlException | RuntimeException e) {
            engine.close();
            throw e;
        }
        server = s;
    }

    /** A new client of the endpoint's socket. */
    public ControlClient client() {
        return ControlClient.unix(server.socket());
    }

    @Override
    public void close() {
        server.close();
        engine.close();
        TempDirs.delete(dir);
    }
}
