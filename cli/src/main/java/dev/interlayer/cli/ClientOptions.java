package dev.interlayer.cli;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.ControlSettings;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * Where the agent is and how to print: {@code --socket PATH} (local) or {@code --remote HOST:PORT} with
 * a client certificate (mutual TLS), and {@code --json}. Mixed into every command that calls an agent.
 */
final class ClientOptions {

    @Option(names = "--socket", paramLabel = "PATH",
            description = "the agent's control socket (default: $INTERLAYER_SOCKET, else /run/interlayer/control.sock for root"
                    + " or when only that exists, else $XDG_RUNTIME_DIR/interlayer/control.sock or /tmp/interlayer-UID/control.sock)")
    Path socket;

    @Option(names = "--remote", paramLabel = "HOST:PORT", description = "call a remote agent's mutual-TLS control listener instead (needs --cert, --key, --ca)")
    String remote;

    @Option(names = "--cert", paramLabel = "FILE", description = "client certificate chain (PEM) for --remote")
    Path cert;

    @Option(names = "--key", paramLabel = "FILE", description = "client private key (PEM, PKCS#8) for --remote")
    Path key;

    @Option(names = "--ca", paramLabel = "FILE", description = "CA certificate (PEM) the agent's certificate must chain to, for --remote")
    Path ca;

    @Option(names = "--json", description = "print JSON for scripts instead of tables (one object per line for live streams)")
    boolean json;

    /** The socket to use when calling locally. */
    Path socketPath() {
        return socket != null ? socket : ControlSettings.clientDefaultSocket();
    }

    /** Where calls go, for messages. */
    String where() {
        return remote != null ? remote : socketPath().toString();
    }

    /**
     * Opens a client to the chosen agent (connects on the first call).
     *
     * @throws CliFailure with exit code 2 for an incomplete --remote, 3 for unreadable TLS files
     */
    ControlClient open() {
        // A call is short: Netty's JFR events of its buffer pools would only cost it starting JFR's event machinery
        // (a tenth of a second and more); -Dio.netty.jfr.enabled=true keeps them.
        if (System.getProperty("io.netty.jfr.enabled") == null) {
            System.setProperty("io.netty.jfr.enabled", "false");
        }
        if (remote == null) {
            if (cert != null || key != null || ca != null) {
                throw new CliFailure(Main.USAGE, "--cert, --key and --ca go with --remote HOST:PORT; a local agent is reached through --socket");
            }
            return ControlClient.unix(socketPath());
        }
        if (cert == null || key == null || ca == null) {
            throw new CliFailure(Main.USAGE, "--remote needs --cert, --key and --ca (the client certificate, its key, and the CA of the agent's certificate)");
        }
        int colon = remote.lastIndexOf(':');
        if (colon <= 0 || colon == remote.length() - 1) {
            throw new CliFailure(Main.USAGE, "--remote " + remote + ": expected HOST:PORT, e.g. agent1.example.org:7443");
        }
        String host = remote.substring(0, colon).replace("[", "").replace("]", "");
        int port;
        try {
            port = Integer.parseInt(remote.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new CliFailure(Main.USAGE, "--remote " + remote + ": the port must be a number");
        }
        try {
            return ControlClient.tls(host, port, cert, key, ca);
        } catch (IOException e) {
            throw new CliFailure(Main.UNREACHABLE, "cannot use the client certificate files: " + e.getMessage()
                    + "; give PEM files with --cert, --key (PKCS#8) and --ca");
        }
    }
}
