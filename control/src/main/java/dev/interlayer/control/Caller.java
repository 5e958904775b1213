package dev.interlayer.control;

import dev.interlayer.control.v1.CallerInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import javax.naming.InvalidNameException;
import javax.naming.NamingEnumeration;
import javax.naming.NamingException;
import javax.naming.directory.Attribute;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * Who made a control call, as the transport proves it: the peer credentials of the Unix socket
 * ({@code SO_PEERCRED}: uid, gid, pid, and the command and executable read from {@code /proc}) or the client
 * certificate of a mutual-TLS connection (subject and subject alternative names).
 *
 * <p>Fields the transport cannot prove are {@code -1} (numbers) or empty (text): a TLS caller has no uid,
 * a Unix-socket caller no certificate. Policy rules over a field that is not proven never match.
 *
 * <p>The command is the process name ({@code /proc/<pid>/comm}), which every process may set for itself
 * ({@code prctl(PR_SET_NAME)}, or a write to {@code /proc/self/comm}): it names, it does not prove. The
 * executable ({@code /proc/<pid>/exe}) is what the kernel started; a process cannot change it without
 * running another program.
 *
 * @param transport {@link #UDS}, {@link #ATTACH}, {@link #TLS} or {@link #HTTP}
 * @param uid the peer's user id, or -1
 * @param gid the peer's group id, or -1
 * @param pid the peer's process id, or -1
 * @param user the user name of {@code uid} from /etc/passwd, or empty
 * @param command the peer's command name ({@code /proc/<pid>/comm}), or empty
 * @param subject the client certificate's subject distinguished name (RFC 2253), or empty
 * @param sans the client certificate's subject alternative names (DNS, IP, URI, e-mail), or empty
 * @param exe the peer's executable ({@code /proc/<pid>/exe}), or empty when it cannot be read (the agent
 *            runs as another, unprivileged user; the process is gone)
 */
public record Caller(String transport, long uid, long gid, long pid, String user, String command, String subject, List<String> sans,
                     String exe) {

    /** Transport name of the local Unix domain socket. */
    public static final String UDS = "uds";
    /** Transport name of the attach socket (programmatic attach by the application: lines, not gRPC; SO_PEERCRED as {@link #UDS}). */
    public static final String ATTACH = "attach";
    /** Transport name of the remote mutual-TLS listener. */
    public static final String TLS = "tls";
    /** Transport name of a web page's request (the orchestrator's dashboard): a uid when the kernel's socket table proves it. */
    public static final String HTTP = "http";

    public Caller {
        sans = List.copyOf(sans);
    }

    /** A caller without a known executable. */
    public Caller(String transport, long uid, long gid, long pid, String user, String command, String subject, List<String> sans) {
        this(transport, uid, gid, pid, user, command, subject, sans, "");
    }

    /** A Unix-socket caller from its peer credentials; user, command and executable are looked up on this host. */
    public static Caller uds(long uid, long gid, long pid) {
        return new Caller(UDS, uid, gid, pid, userName(uid), command(pid), "", List.of(), exe(pid));
    }

    /** An attach-socket caller from its peer credentials, looked up as {@link #uds}'s. */
    public static Caller attach(long uid, long gid, long pid) {
        return new Caller(ATTACH, uid, gid, pid, userName(uid), command(pid), "", List.of(), exe(pid));
    }

    /**
     * A web request's caller: {@code uid} is the user owning the client's socket when it is on this host (from the kernel's
     * socket table), else -1.
     */
    public static Caller http(long uid) {
        return new Caller(HTTP, uid, -1, -1, userName(uid), "", "", List.of());
    }

    /** A mutual-TLS caller identified by its certificate's subject and subject alternative names. */
    public static Caller tls(String subject, List<String> sans) {
        return new Caller(TLS, -1, -1, -1, "", "", subject, sans);
    }

    /** A mutual-TLS caller identified by {@code cert}. */
    public static Caller tls(X509Certificate cert) {
        return tls(cert.getSubjectX500Principal().getName(), sans(cert));
    }

    /** The caller as the wire shows it. */
    public CallerInfo toProto() {
        return CallerInfo.newBuilder().setTransport(transport).setUid(uid).setGid(gid).setPid(pid).setUser(user).setCommand(command)
                .setSubject(subject).addAllSans(sans).setExe(exe).build();
    }

    /**
     * The values of attribute {@code type} (e.g. {@code CN}, {@code O}; any case) in the certificate subject,
     * in no particular order; empty if there is no subject or it has no such attribute. Parsed from the
     * subject, so the order in which a tool wrote the attributes does not matter.
     */
    public List<String> subjectAttribute(String type) {
        if (subject.isEmpty()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        try {
            for (Rdn rdn : new LdapName(subject).getRdns()) {
                NamingEnumeration<? extends Attribute> all = rdn.toAttributes().getAll();
                while (all.hasMore()) {
                    Attribute a = all.next();
                    if (a.getID().toUpperCase(Locale.ROOT).equals(type.toUpperCase(Locale.ROOT)) && a.get() instanceof String v) {
                        out.add(v);
                    }
                }
            }
        } catch (InvalidNameException e) {
            return List.of(); // not a distinguished name: nothing proven
        } catch (NamingException e) {
            return List.of();
        }
        return out;
    }

    /** Short text for logs, audit lines and a module's {@code ControlRequest.caller}. */
    @Override
    public String toString() {
        if (TLS.equals(transport)) {
            return "tls:" + subject;
        }
        if (HTTP.equals(transport)) {
            return uid < 0 ? "http:not from this host" : "http:uid=" + uid + (user.isEmpty() ? "" : "(" + user + ")");
        }
        return transport + ":uid=" + uid + (user.isEmpty() ? "" : "(" + user + ")") + ",gid=" + gid + ",pid=" + pid
                + (command.isEmpty() ? "" : ",command=" + command);
    }

    /** The text subject alternative names of {@code x} (DNS, IP, URI, e-mail). */
    static List<String> sans(X509Certificate x) {
        List<String> out = new ArrayList<>();
        try {
            Collection<List<?>> names = x.getSubjectAlternativeNames();
            if (names != null) {
                for (List<?> n : names) {
                    if (n.size() >= 2 && n.get(1) instanceof String s) {
                        out.add(s);
                    }
                }
            }
        } catch (CertificateParsingException e) {
            // no usable SANs: the subject still identifies the caller
        }
        return out;
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

    /**
     * The executable of process {@code pid} ({@code /proc/<pid>/exe}), or empty if it cannot be read: the
     * process is gone, or belongs to another user and this process may not look (an agent not run as root).
     */
    static String exe(long pid) {
        if (pid <= 0) {
            return "";
        }
        try {
            return Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "exe")).toString();
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }
}
