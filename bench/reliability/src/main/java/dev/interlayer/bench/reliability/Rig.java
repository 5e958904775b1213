package dev.interlayer.bench.reliability;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Two agents back to back as separate processes, and the load through them:
 * clients → client-role agent → server-role agent → sink/source server (the last in this process, with the clients).
 */
final class Rig implements AutoCloseable {

    final Traffic traffic;
    final AgentProcess server;
    final AgentProcess client;

    /** Stops the agents when this JVM is stopped (SIGTERM, Ctrl-C) before {@link #close()}. */
    private final Thread hook;

    private Rig(Traffic traffic, AgentProcess server, AgentProcess client) {
        this.traffic = traffic;
        this.server = server;
        this.client = client;
        hook = new Thread(() -> {
            client.close();
            server.close();
        }, "soak-agents-stop");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /**
     * Starts the sink, the server-role agent with {@code serverModules}, the client-role agent with
     * {@code clientModules} (sample module names, e.g. "tag"; jars from {@code samples}) and their {@code modules:}
     * sections, in folders of {@code work}. The load starts with {@link Traffic#start(int)} on {@link #entryPort()}.
     */
    static Rig start(Path interlayerJar, Path samples, Path work, Traffic.Settings settings,
                     List<String> clientModules, String clientYaml, List<String> serverModules, String serverYaml)
            throws IOException, InterruptedException {
        Traffic traffic = new Traffic(settings);
        AgentProcess server = null;
        try {
            server = AgentProcess.start(interlayerJar, work.resolve("server-agent"), "server", "server",
                    traffic.serverPort(), jars(samples, serverModules), serverYaml);
            AgentProcess client = AgentProcess.start(interlayerJar, work.resolve("client-agent"), "client", "client",
                    server.port, jars(samples, clientModules), clientYaml);
            return new Rig(traffic, server, client);
        } catch (IOException | InterruptedException | RuntimeException e) {
            if (server != null) {
                server.close();
            }
            traffic.close();
            throw e;
        }
    }

    /** The sample module jar of each name, e.g. {@code samples/module-tag.jar}. */
    static List<Path> jars(Path samples, List<String> names) throws IOException {
        List<Path> out = new ArrayList<>();
        for (String n : names) {
            Path jar = samples.resolve("module-" + n + ".jar");
            if (!Files.isRegularFile(jar)) {
                throw new IOException("sample module jar " + jar + " not found; build it with ./mvnw -q -DskipTests -pl cli -am package");
            }
            out.add(jar);
        }
        return out;
    }

    int entryPort() {
        return client.port;
    }

    List<AgentProcess> agents() {
        return List.of(client, server);
    }

    @Override
    public void close() throws IOException, InterruptedException {
        Runtime.getRuntime().removeShutdownHook(hook);
        traffic.stop();
        client.close();
        server.close();
        traffic.close();
    }
}
