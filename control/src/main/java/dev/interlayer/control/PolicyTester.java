package dev.interlayer.control;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * Runs a policy's test cases ({@code interlayer policy test POLICY CASES}): each case names a caller, a
 * call ({@code Endpoint.Method}), request or response, the message's fields, and the expected decision
 * ({@code granted}, {@code denied} or {@code invalid}, optionally the deciding rule). Each message is built
 * as a real IDL message and goes through the same checks as a live call: structure, then policy.
 *
 * <pre>{@code
 * cases:
 *   - name: alice may not revoke
 *     caller: {uid: 1000, user: alice}
 *     call: Modules.SetState
 *     message: {name: tcplog, state: REVOKE}
 *     expect: denied
 *     rule: default
 *   - name: the orchestrator's certificate
 *     caller: {cert: orchestrator.crt}   # PEM, relative to this file: its subject and SANs
 *     call: Modules.List
 *     expect: granted
 * }</pre>
 */
public final class PolicyTester {

    private static final List<String> TOP_KEYS = List.of("agent-uid", "cases");
    private static final List<String> CASE_KEYS = List.of("name", "caller", "call", "on", "message", "expect", "rule");
    private static final List<String> CALLER_KEYS = List.of("transport", "uid", "gid", "pid", "user", "command", "exe", "subject", "san", "cert");

    /**
     * The outcome of one case.
     *
     * @param name the case's name
     * @param line the line it starts on
     * @param expected the expected decision (and rule, when the case names one)
     * @param actual the decision made (and the deciding rule)
     * @param reason why the decision was made
     * @param passed whether actual matches expected
     */
    public record Outcome(String name, int line, String expected, String actual, String reason, boolean passed) {}

    private PolicyTester() {}

    /**
     * Runs every case of {@code cases} against {@code policy}.
     *
     * @throws YamlException if either file is not valid (file:line and what to fix)
     */
    public static List<Outcome> run(Path policy, Path cases) throws YamlException {
        String text;
        try {
            text = Files.readString(cases, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new YamlException(cases + ": cannot read the test cases: " + e.getMessage());
        }
        String source = cases.toString();
        Node root = Yamls.parse(source, text);
        Yamls.onlyKeys(source, root, "the test cases file", TOP_KEYS);
        Map<String, Node> top = Yamls.map(source, root, "the test cases file");
        long agentUid = top.containsKey("agent-uid") ? Yamls.integer(source, top.get("agent-uid"), "agent-uid") : Policy.processUid();
        Policy p = Policy.load(policy, agentUid);
        SecurityModule security = new SecurityModule(Constraints.builtin(), PolicyHolder.of(p), null, true); // check() never audits
        if (!top.containsKey("cases")) {
            throw Yamls.error(source, root, "no 'cases:' list; add test cases (see docs/control-plane.md, \"Policy tests\")");
        }
        List<Outcome> out = new ArrayList<>();
        for (Node c : Yamls.list(source, top.get("cases"), "cases")) {
            out.add(runCase(source, cases.toAbsolutePath().getParent(), c, security));
        }
        return out;
    }

    private static Outcome runCase(String source, Path base, Node n, SecurityModule security) throws YamlException {
        Yamls.onlyKeys(source, n, "a case", CASE_KEYS);
        Map<String, Node> m = Yamls.map(source, n, "a case");
        String name = m.containsKey("name") ? Yamls.scalar(source, m.get("name"), "name") : "case at line " + Yamls.line(n);
        String what = "case '" + name + "'";
        if (!m.containsKey("call")) {
            throw Yamls.error(source, n, what + " has no call; add e.g. 'call: Modules.SetState'");
        }
        String callName = Yamls.scalar(source, m.get("call"), what + ".call");
        Idl.Method method = security.idl().method(callName);
        if (method == null) {
            throw Yamls.error(source, m.get("call"), what + ": " + callName + " is not a method of the IDL; methods: "
                    + String.join(", ", security.idl().methods().stream().map(Idl.Method::id).toList()));
        }
        Policy.Kind kind = Policy.Kind.REQUEST;
        if (m.containsKey("on")) {
            String on = Yamls.scalar(source, m.get("on"), what + ".on");
            kind = switch (on) {
                case "request" -> Policy.Kind.REQUEST;
                case "response" -> Policy.Kind.RESPONSE;
                default -> throw Yamls.error(source, m.get("on"), what + ": on must be request or response, got '" + on + "'");
            };
        }
        if (!m.containsKey("expect")) {
            throw Yamls.error(source, n, what + " has no expect; add 'expect: granted', 'expect: denied' or 'expect: invalid'");
        }
        String expect = Yamls.scalar(source, m.get("expect"), what + ".expect");
        if (!List.of(AuditLog.GRANTED, AuditLog.DENIED, AuditLog.INVALID).contains(expect)) {
            throw Yamls.error(source, m.get("expect"), what + ": expect must be granted, denied or invalid, got '" + expect + "'");
        }
        String rule = m.containsKey("rule") ? Yamls.scalar(source, m.get("rule"), what + ".rule") : null;
        Caller caller = caller(source, base, m.get("caller"), what);
        Descriptor type = kind == Policy.Kind.REQUEST ? method.descriptor().getInputType() : method.descriptor().getOutputType();
        Message message = message(source, m.get("message"), type, what);
        SecurityModule.Verdict v = security.check(caller, method, kind, message);
        boolean passed = v.decision().equals(expect) && (rule == null || rule.equals(v.rule()));
        return new Outcome(name, Yamls.line(n), expect + (rule == null ? "" : " by rule " + rule), v.decision() + " by rule " + v.rule(),
                v.reason(), passed);
    }

    private static Caller caller(String source, Path base, Node n, String what) throws YamlException {
        if (n == null) {
            throw new YamlException(source + ": " + what + " has no caller; add e.g. 'caller: {uid: 1000, user: alice}'");
        }
        Yamls.onlyKeys(source, n, what + ".caller", CALLER_KEYS);
        Map<String, Node> c = Yamls.map(source, n, what + ".caller");
        if (c.containsKey("cert")) {
            return certificateCaller(source, base, c, what);
        }
        String transport = c.containsKey("transport") ? Yamls.scalar(source, c.get("transport"), "transport") : Caller.UDS;
        if (!transport.equals(Caller.UDS) && !transport.equals(Caller.ATTACH) && !transport.equals(Caller.TLS)) {
            throw Yamls.error(source, c.get("transport"), what + ": transport must be uds, attach or tls");
        }
        return new Caller(transport,
                c.containsKey("uid") ? Yamls.integer(source, c.get("uid"), "uid") : -1,
                c.containsKey("gid") ? Yamls.integer(source, c.get("gid"), "gid") : -1,
                c.containsKey("pid") ? Yamls.integer(source, c.get("pid"), "pid") : -1,
                c.containsKey("user") ? Yamls.scalar(source, c.get("user"), "user") : "",
                c.containsKey("command") ? Yamls.scalar(source, c.get("command"), "command") : "",
                c.containsKey("subject") ? Yamls.scalar(source, c.get("subject"), "subject") : "",
                c.containsKey("san") ? Yamls.scalars(source, c.get("san"), "san") : List.of(),
                c.containsKey("exe") ? Yamls.scalar(source, c.get("exe"), "exe") : "");
    }

    /** A TLS caller as the agent would see the client certificate in {@code cert} (a PEM file, relative to the cases file). */
    private static Caller certificateCaller(String source, Path base, Map<String, Node> c, String what) throws YamlException {
        for (String k : c.keySet()) {
            if (!k.equals("cert") && !k.equals("transport")) {
                throw Yamls.error(source, c.get(k), what + ".caller: '" + k + "' does not go with cert: a certificate caller is the"
                        + " certificate's subject and subject alternative names; leave " + k + " out");
            }
        }
        if (c.containsKey("transport") && !Caller.TLS.equals(Yamls.scalar(source, c.get("transport"), "transport"))) {
            throw Yamls.error(source, c.get("transport"), what + ": a caller with a cert calls over tls; remove transport or write tls");
        }
        Path file = base.resolve(Yamls.scalar(source, c.get("cert"), what + ".caller.cert"));
        try (InputStream in = Files.newInputStream(file)) {
            Certificate cert = CertificateFactory.getInstance("X.509").generateCertificate(in);
            if (!(cert instanceof X509Certificate x)) {
                throw Yamls.error(source, c.get("cert"), what + ".caller.cert: " + file + " is not an X.509 certificate");
            }
            return Caller.tls(x);
        } catch (IOException e) {
            throw Yamls.error(source, c.get("cert"), what + ".caller.cert: cannot read " + file + ": " + e.getMessage());
        } catch (CertificateException e) {
            throw Yamls.error(source, c.get("cert"), what + ".caller.cert: " + file + " is not a PEM certificate (" + e.getMessage()
                    + "); give the client certificate the caller presents, e.g. the file passed to --cert");
        }
    }

    /** Builds the message from the case's YAML fields through the IDL's JSON mapping (enum names, nested messages, lists). */
    private static Message message(String source, Node n, Descriptor type, String what) throws YamlException {
        DynamicMessage.Builder b = DynamicMessage.newBuilder(type);
        if (n == null) {
            return b.build();
        }
        StringBuilder json = new StringBuilder();
        toJson(n, json);
        try {
            JsonFormat.parser().merge(json.toString(), b);
        } catch (InvalidProtocolBufferException | RuntimeException e) {
            throw Yamls.error(source, n, what + ": the message does not fit " + type.getName() + ": " + e.getMessage());
        }
        return b.build();
    }

    private static void toJson(Node n, StringBuilder b) {
        if (n instanceof MappingNode m) {
            b.append('{');
            boolean first = true;
            for (NodeTuple t : m.getValue()) {
                if (!first) b.append(',');
                first = false;
                Json.str(b, ((ScalarNode) t.getKeyNode()).getValue());
                b.append(':');
                toJson(t.getValueNode(), b);
            }
            b.append('}');
        } else if (n instanceof SequenceNode s) {
            b.append('[');
            for (int i = 0; i < s.getValue().size(); i++) {
                if (i > 0) b.append(',');
                toJson(s.getValue().get(i), b);
            }
            b.append(']');
        } else {
            ScalarNode s = (ScalarNode) n;
            if (s.getTag().equals(Tag.INT) || s.getTag().equals(Tag.BOOL) || s.getTag().equals(Tag.FLOAT)) {
                b.append(s.getValue());
            } else if (s.getTag().equals(Tag.NULL)) {
                b.append("null");
            } else {
                Json.str(b, s.getValue());
            }
        }
    }
}
