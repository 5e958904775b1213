package dev.interlayer.control.testing;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.HealthRequest;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code HoldConnections SOCKET N}: opens N clients of the control socket, one connection each, makes one
 * call on each and keeps them open until all are made, so the agent sees N connections of this process's uid
 * at once. Prints one line per client: {@code open} or {@code refused CODE description}.
 */
public final class HoldConnections {

    private HoldConnections() {}

    public static void main(String[] args) {
        List<ControlClient> clients = new ArrayList<>();
        try {
            for (int i = 0; i < Integer.parseInt(args[1]); i++) {
                ControlClient c = ControlClient.unix(Path.of(args[0]));
                clients.add(c);
                try {
                    c.health().check(HealthRequest.getDefaultInstance());
                    System.out.println("open");
                } catch (StatusRuntimeException e) {
                    System.out.println("refused " + e.getStatus().getCode() + " " + e.getStatus().getDescription());
                }
            }
        } finally {
            clients.forEach(ControlClient::close);
        }
    }
}
