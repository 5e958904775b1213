package dev.interlayer.control;

import dev.interlayer.control.v1.CallerInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Who made a control call, as the transport proves it: the peer credentials of the Unix socket
 * ({@code SO_PEERCRED}: uid, gid, pid, and the command read from {@code /proc}) or the client
 * certificate of a mutual-TLS connection (subject and subject alternative names).
 *
 * <p>Fields the transport cannot prove are {@code -1} (numbers) or empty (text): a TLS caller has no uid,
 * a Unix-socket caller no certificate. Policy rules over a field that is not proven never match.
 *
 * @param transport {@link #UDS} or {@link #TLS}
 * @param uid the peer's user id, or -1
 * @param gid the peer's group id, or -1
 * @param pid the peer's process id, or -1
 * @param user the user name of {@code uid} from /etc/passwd, or empty
 * @param command the peer's command name ({@code /proc/<pid>/comm}), or empty
 * @param subject the client certificate's subject distinguished name, or empty
 * @param sans the client certificate's subject alternative names (DNS, IP, URI, e-mail), or empty
 */
public record Caller(String transport, long uid, long gid, long pid, String user, String command, String subject, List<String> sans) {

    /** Transport name of the local Unix domain socket. */
    public static final String UDS = "uds";
    /** Transport name of the remote mutual-TLS listener. */
    public static final String TLS = "tls";

    public Caller {
        sans = List.copyOf(sans);
    }

    /** A Unix-socket caller from its peer credentials; user and command are looked up on this host. */
    public static Caller uds(long uid, long gid, long pid) {
        return new Caller(UDS, uid, gid, pid, userName(uid), command(pid), "", List.of());
    }

    /** A mutual-TLS caller identified by its certificate. */
    public static Caller tls(String subject, List<String> sans) {
        return new Caller(TLS, -1, -1, -1, "", "", subject, sans);
    }

    /** The caller as the wire shows it. */
    public CallerInfo toProto() {
        return CallerInfo.newBuilder().setTransport(transport).setUid(uid).setGid(gid).setPid(pid).setUser(user).setCommand(command)
                .setSubject(subject).addAllSans(sans).build();
    }

    /** Short text for logs, audit lines and a module's {@code ControlRequest.caller}. */
    @Override
    public String toString() {
        if (TLS.equals(transport)) {
            return "tls:" + subject;
        }
        return "uds:uid=" + uid + (user.isEmpty() ? "" : "(" + user + ")") + ",gid=" + gid + ",pid=" + pid
                + (command.isEmpty() ? "" : ",command=" + command);
    }

    /** The name of {@code uid} in /etc/passwd, or empty if it has none. */
    static String userName(long uid) {
        if (uid < 0) {
            return "";
        }
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"), StandardCharsets.UTF_8)) {
                String[] f = line.split(":", -1);
                if (f.length > 2 && f[2].equals(Long.toString(uid))) {
                    return f[0];
                }
            }
        } catch (IOException | RuntimeException e) {
            return "";
        }
        return "";
    }

    /** The command name of process {@code pid} from /proc (its comm), or empty if it is gone or unknown. */
    static String command(long pid) {
        if (pid <= 0) {
            return "";
        }
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "comm"), StandardCharsets.UTF_8).strip();
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }
}
