package dev.interlayer.natives;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.SocketOption;
import dev.interlayer.engine.EmbeddedConnection;
import dev.interlayer.engine.EmbeddedEngine;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.engine.testing.UdpEchoServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The C paths the tag sample does not take, each through a small C module built here, over real loopback sockets: the
 * datagram hooks on a UDP listener, the socket hooks on TCP (deny, redirect, option changes), and the host services
 * hold / inject_held / release_held, inject, schedule / cancel_timer, rewrite and reply; and the scratch copy the adapter
 * makes when the engine's chunk is not one piece of native memory: heap and composite buffers handed to the engine's
 * chunk path, and, over sockets, the Java tag's heap replacement in an agent whose allocator prefers heap buffers.
 */
class CHostServicesTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final Closer closer = new Closer();

    /** A one-module C object: {@code code} defines the hooks and a {@code vtables} body of initvt functions. */
    private static String plugin(String name, String interfaces, String params, String code) {
        return """
                #include <interlayer/module.h>
                #include <stdio.h>
                #include <stdlib.h>
                #include <string.h>
                #include <stdatomic.h>
                static const il_host *host;
                static atomic_long live; /* connection states allocated and not yet freed */
                %s
                static const il_param params[] = { %s { NULL, NULL, NULL, NULL } };
                static const il_module_info modules[] = {{ .size = sizeof(il_module_info), .name = "%s", .version = "1.0.0",
                    .interfaces = "%s", .priority = 60, .params = params, .param_count = sizeof params / sizeof params[0] - 1,
                    .init = init, .attach = attach, .detach = detach }};
                uint32_t interlayer_plugin_get_version(void) { return IL_ABI_VERSION; }
                const il_module_info *interlayer_module_list(uint32_t *count) { *count = 1; return modules; }
                int interlayer_plugin_init(const il_host *h) { host = h; return IL_OK; }
                void interlayer_plugin_fini(void) { host = NULL; }
                """.formatted(code, params, name, interfaces);
    }

    /** The initvt function of {@code module} for {@code iface}: refuses another major, sets {@code minor} and runs {@code fill}. */
    private static String initvt(String iface, String module, int minor, String fill) {
        return """
                int %1$s_%2$s_initvt(il_ctx *ctx, int major, int host_minor, void *v) {
                    (void) ctx; (void) host_minor;
                    if (major != IL_%3$s_MAJOR) return IL_ERR_VERSION;
                    il_%1$s_vtable *vt = v;
                    vt->minor = %4$d;
                    %5$s
                    return IL_OK;
                }
                """.formatted(iface, module, iface.toUpperCase(java.util.Locale.ROOT), minor, fill);
    }

    /** Connection state with its handle, counted in {@code live}; init keeps the module's context. */
    private static final String STATE = """
            typedef struct { il_conn *conn; il_held *held[64]; int held_count; int fired; } conn_state;
            static il_ctx *me;
            static int init(il_ctx *ctx, void **module) { me = ctx; *module = NULL; return IL_OK; }
            static int attach(void *m, il_conn *conn, void **state) {
                (void) m;
                conn_state *s = calloc(1, sizeof *s);
                if (!s) return IL_ERR_NOMEM;
                s->conn = conn;
                *state = s;
                atomic_fetch_add(&live, 1);
                return IL_OK;
            }
            static void detach(void *m, void *state, int reason) {
                (void) m; (void) reason;
                conn_state *s = state;
                for (int i = 0; i < s->held_count; i++) host->release_held(s->held[i]);
                free(s);
                atomic_fetch_sub(&live, 1);
            }
            """;

    private static ModuleConfig config(String name, Map<String, Object> params) {
        return new ModuleConfig(name, null, 60, null, null, null, null, params);
    }

    private LoadedModule load(EngineFixture fx, String name, String source, Map<String, Object> params) throws Exception {
        Path so = CBuild.so(dir, name, source);
        List<LoadedModule> loaded = fx.registry.load(so, n -> config(n, params));
        assertThat(loaded).extracting(LoadedModule::name).containsExactly(name);
        return loaded.getFirst();
    }

    /** A client-role listener with the C module {@code name} before an echo server that records what it received. */
    private record Proxy(LoadedModule module, InetSocketAddress at, ByteArrayOutputStream atServer) {}

    private Proxy proxy(String name, String source) throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        ByteArrayOutputStream atServer = new ByteArrayOutputStream();
        TestServer server = closer.later(TestServer.echo(atServer));
        LoadedModule m = load(fx, name, source, Map.of());
        return new Proxy(m, fx.listen(Role.CLIENT, server.address()), atServer);
    }

    /** The module's answer to a control request, sent as the control plane sends it. */
    private static ControlResponse control(LoadedModule m, String command) {
        SocketModule<?> sm = (SocketModule<?>) m.module();
        return m.callModuleWide("control", () -> sm.control(new ControlRequest(command, new byte[0], "test")));
    }

    private static String text(ControlResponse r) {
        return new String(r.body(), StandardCharsets.UTF_8);
    }

    private static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("not within 10 s: " + what);
            Thread.sleep(10);
        }
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    // ---- hold, inject_held, release_held, schedule, reply ----------------------------------------------------------

    /**
     * Holds every chunk sent; a chunk ending in '!' has a timer (0 ns) inject everything held, in order; one ending in '#'
     * has the timer give everything held back unsent. control "stats" answers with what it holds, injected and released.
     */
    private static final String HOLDER = plugin("holder", "stream 1.0, socket 1.0", "", STATE + """
            static atomic_long holding, injected, released;
            static void flush(void *module, void *arg) {
                (void) module;
                conn_state *s = arg;
                int inject = s->fired;
                for (int i = 0; i < s->held_count; i++) {
                    long n = (long) host->held_length(s->held[i]);
                    atomic_fetch_sub(&holding, n);
                    if (inject) {
                        if (host->inject_held(s->conn, IL_SEND, s->held[i]) == IL_OK) atomic_fetch_add(&injected, n);
                    } else {
                        host->release_held(s->held[i]);
                        atomic_fetch_add(&released, n);
                    }
                }
                s->held_count = 0;
            }
            static int on_send(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m;
                conn_state *s = state;
                if (len == 0) return IL_PASS;
                if (s->held_count == 64) { host->set_error(me, 1, "more than 64 chunks held"); return IL_ERR_FAILED; }
                il_held *h = host->hold(call);
                if (!h) { host->set_error(me, 1, "hold refused"); return IL_ERR_FAILED; }
                s->held[s->held_count++] = h;
                atomic_fetch_add(&holding, (long) len);
                uint8_t last = data[len - 1];
                if (last == '!' || last == '#') {
                    s->fired = last == '!';
                    if (host->schedule(s->conn, 0, flush, s) == 0) { host->set_error(me, 1, "schedule refused"); return IL_ERR_FAILED; }
                }
                return IL_HOLD;
            }
            static int control(void *m, il_call *call, const char *command, const uint8_t *body, size_t len) {
                (void) m; (void) body; (void) len;
                char out[160];
                int n;
                if (strcmp(command, "stats") == 0) {
                    n = snprintf(out, sizeof out, "holding=%ld injected=%ld released=%ld live=%ld", atomic_load(&holding),
                                 atomic_load(&injected), atomic_load(&released), atomic_load(&live));
                    host->reply(call, out, (size_t) n);
                    return IL_OK;
                }
                n = snprintf(out, sizeof out, "unknown command '%s'; try stats", command);
                host->reply(call, out, (size_t) n);
                return IL_ERR_FAILED;
            }
            """
            + initvt("stream", "holder", 0, "vt->on_send = on_send;")
            + initvt("socket", "holder", 0, "vt->control = control;"));

    @Test
    void heldChunksAreInjectedInOrderAndReleasedOnesAreNeverSent() throws Exception {
        Proxy p = proxy("holder", HOLDER);
        byte[] first = ascii("abc"), second = ascii("def!"), dropped = ascii("xyz#"), last = ascii("ok!");
        try (Socket s = EngineFixture.connect(p.at())) {
            s.getOutputStream().write(first);
            waitFor("the first chunk held", () -> text(control(p.module(), "stats")).startsWith("holding=" + first.length + " "));
            s.getOutputStream().write(second);
            assertThat(s.getInputStream().readNBytes(first.length + second.length)).isEqualTo(concat(first, second));
            s.getOutputStream().write(dropped);
            waitFor("the chunk given back", () -> text(control(p.module(), "stats")).contains("released=" + dropped.length));
            s.getOutputStream().write(last);
            assertThat(s.getInputStream().readNBytes(last.length)).isEqualTo(last);
            s.shutdownOutput();
            assertThat(s.getInputStream().readAllBytes()).isEmpty();
        }
        assertThat(p.atServer().toByteArray()).isEqualTo(concat(first, second, last));
        waitFor("the connection state freed", () -> text(control(p.module(), "stats")).endsWith(" live=0"));
        assertThat(text(control(p.module(), "stats"))).isEqualTo("holding=0 injected=%d released=%d live=0".formatted(
                first.length + second.length + last.length, dropped.length));
        ControlResponse unknown = control(p.module(), "frobnicate");
        assertThat(unknown.ok()).isFalse();
        assertThat(text(unknown)).isEqualTo("unknown command 'frobnicate'; try stats");
    }

    // ---- inject, schedule, cancel_timer ------------------------------------------------------------------------------

    /** On the first chunk: a timer injecting "hello" after 200 ms and one injecting "never" after 50 ms, cancelled at once. */
    private static final String GREETER = plugin("greeter", "stream 1.0", "", STATE + """
            static void say(void *module, void *arg) {
                (void) module;
                conn_state *s = arg;
                const char *word = s->fired == 1 ? "hello" : "never";
                host->inject(s->conn, IL_SEND, word, strlen(word), 42);
            }
            static int on_send(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m; (void) call; (void) data; (void) len;
                conn_state *s = state;
                if (s->fired) return IL_PASS;
                s->fired = 1;
                if (host->schedule(s->conn, 200000000ull, say, s) == 0) return IL_ERR_FAILED;
                uint64_t never = host->schedule(s->conn, 50000000ull, say, s);
                if (never == 0 || host->cancel_timer(never) != IL_OK) { host->set_error(me, 1, "cancel_timer failed"); return IL_ERR_FAILED; }
                if (host->cancel_timer(never) != IL_ERR_FAILED) { host->set_error(me, 1, "a timer cancelled twice"); return IL_ERR_FAILED; }
                return IL_PASS;
            }
            """
            + initvt("stream", "greeter", 0, "vt->on_send = on_send;"));

    @Test
    void aTimerInjectsTheModulesBytesAndACancelledTimerNeverFires() throws Exception {
        Proxy p = proxy("greeter", GREETER);
        byte[] go = ascii("go"), hello = ascii("hello");
        try (Socket s = EngineFixture.connect(p.at())) {
            s.getOutputStream().write(go);
            assertThat(s.getInputStream().readNBytes(go.length + hello.length)).isEqualTo(concat(go, hello));
            Thread.sleep(100); // long past the cancelled timer's 50 ms
            s.shutdownOutput();
            assertThat(s.getInputStream().readAllBytes()).as("nothing from the cancelled timer").isEmpty();
        }
        assertThat(p.atServer().toByteArray()).isEqualTo(concat(go, hello));
        assertThat(p.module().faults()).isZero();
    }

    // ---- rewrite --------------------------------------------------------------------------------------------------

    private static final String SCRAMBLER = plugin("scrambler", "stream 1.2", "", STATE + """
            static int flip(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m; (void) state; (void) data;
                uint8_t *p = host->rewrite(call);
                if (!p && len > 0) { host->set_error(me, 1, "rewrite refused"); return IL_ERR_FAILED; }
                for (size_t i = 0; i < len; i++) p[i] ^= 0x5a;
                return IL_PASS;
            }
            """
            + initvt("stream", "scrambler", 2, "vt->on_send = flip; vt->on_recv = flip;"));

    private static byte[] xor(byte[] b) {
        byte[] out = b.clone();
        for (int i = 0; i < out.length; i++) out[i] ^= 0x5a;
        return out;
    }

    @Test
    void rewriteChangesTheChunksOwnBytesBothWays() throws Exception {
        Proxy p = proxy("scrambler", SCRAMBLER);
        byte[] data = new byte[200_000];
        new Random(18).nextBytes(data);
        try (Socket s = EngineFixture.connect(p.at())) {
            s.getOutputStream().write(data);
            s.shutdownOutput();
            assertThat(s.getInputStream().readAllBytes()).as("flipped on the way out, flipped back on the way in").isEqualTo(data);
        }
        assertThat(p.atServer().toByteArray()).isEqualTo(xor(data));
        assertThat(p.module().faults()).isZero();
    }

    // ---- socket hooks ---------------------------------------------------------------------------------------------

    /**
     * on_connect denies with the parameter deny's text when set, else redirects to port redirect when set; on_set_option
     * turns TCP_NODELAY off on the upstream's socket; on_get_option reports IP_TOS 0x20; control "target" answers the
     * port the engine asked to connect to.
     */
    private static final String GATE = plugin("gate", "socket 1.0", """
            { "deny", "string", "", "refuse every connect with this reason" },
            { "redirect", "int", "0", "connect to this port of 127.0.0.1 instead" },
            """, """
            static il_ctx *me;
            static const char *deny_reason;
            static int64_t redirect_port;
            static atomic_int target_port;
            static int init(il_ctx *ctx, void **module) {
                me = ctx;
                *module = NULL;
                size_t n;
                deny_reason = host->param_string(ctx, "deny", &n);
                redirect_port = host->param_int(ctx, "redirect");
                if (redirect_port < 0 || redirect_port > 65535) { host->set_error(ctx, 1, "redirect must be a port"); return IL_ERR_INVALID; }
                return IL_OK;
            }
            static int attach(void *m, il_conn *conn, void **state) { (void) m; *state = conn; atomic_fetch_add(&live, 1); return IL_OK; }
            static void detach(void *m, void *state, int reason) { (void) m; (void) state; (void) reason; atomic_fetch_sub(&live, 1); }
            static int on_connect(void *m, void *state, il_conn *conn, il_call *call, const il_addr *target) {
                (void) m; (void) state; (void) conn;
                atomic_store(&target_port, target->port);
                if (deny_reason && deny_reason[0]) return host->deny(call, deny_reason);
                if (redirect_port) {
                    il_addr to = { .family = 4, .port = (uint16_t) redirect_port, .ip = { 127, 0, 0, 1 } };
                    return host->redirect(call, &to);
                }
                return IL_ALLOW;
            }
            static int on_set_option(void *m, void *state, il_conn *conn, il_call *call, int side, int option, int64_t value) {
                (void) m; (void) state; (void) conn; (void) value;
                if (side == IL_SIDE_REMOTE && option == IL_TCP_NODELAY) return host->modify(call, 0);
                return IL_ALLOW;
            }
            static int64_t on_get_option(void *m, void *state, il_conn *conn, int side, int option, int64_t value) {
                (void) m; (void) state; (void) conn; (void) side;
                return option == IL_IP_TOS ? 0x20 : value;
            }
            static int control(void *m, il_call *call, const char *command, const uint8_t *body, size_t len) {
                (void) m; (void) body; (void) len;
                char out[64];
                int n = strcmp(command, "target") == 0 ? snprintf(out, sizeof out, "%d", atomic_load(&target_port))
                        : snprintf(out, sizeof out, "live=%ld", atomic_load(&live));
                host->reply(call, out, (size_t) n);
                return IL_OK;
            }
            """
            + initvt("socket", "gate", 0, "vt->on_connect = on_connect; vt->on_set_option = on_set_option; vt->on_get_option = on_get_option; vt->control = control;"));

    @Test
    void onConnectRedirectsToAnotherUpstreamAndOptionHooksChangeWhatIsSetAndReported() throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        TestServer echo = closer.later(TestServer.echo());
        byte[] greeting = ascii("other upstream");
        TestServer other = closer.later(new TestServer(s -> s.getOutputStream().write(greeting)));
        LoadedModule m = load(fx, "gate", GATE, Map.of("redirect", other.address().getPort()));
        InetSocketAddress at = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(at)) {
            assertThat(s.getInputStream().readNBytes(greeting.length)).isEqualTo(greeting);
            long id = fx.engine.connections().getFirst().id();
            assertThat(fx.engine.option(id, Side.LOCAL, SocketOption.TCP_NODELAY)).isEqualTo(true);
            assertThat(fx.engine.option(id, Side.REMOTE, SocketOption.TCP_NODELAY)).isEqualTo(false);
            assertThat(fx.engine.option(id, Side.REMOTE, SocketOption.IP_TOS)).isEqualTo(0x20);
        }
        assertThat(text(control(m, "target"))).as("the port on_connect was given").isEqualTo(String.valueOf(echo.address().getPort()));
        waitFor("detached", () -> text(control(m, "live")).equals("live=0"));
        assertThat(m.faults()).isZero();
    }

    @Test
    void onConnectDeniesAndTheUpstreamNeverSeesAConnection() throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        AtomicInteger accepted = new AtomicInteger();
        TestServer server = closer.later(new TestServer(s -> accepted.incrementAndGet()));
        load(fx, "gate", GATE, Map.of("deny", "not for this lab"));
        InetSocketAddress at = fx.listen(Role.CLIENT, server.address());
        try (Socket s = EngineFixture.connect(at)) {
            assertThatThrownBy(() -> {
                InputStream in = s.getInputStream();
                s.getOutputStream().write(1);
                while (in.read() >= 0) {
                    // until the reset
                }
            }).isInstanceOf(SocketException.class);
        }
        Thread.sleep(100);
        assertThat(accepted).hasValue(0);
    }

    @Test
    void aRedirectParameterOutOfRangeIsRefusedAtInitWithTheModulesMessage() throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        Path so = CBuild.so(dir, "gate", GATE);
        assertThatThrownBy(() -> fx.registry.load(so, n -> config(n, Map.of("redirect", 70000))))
                .isInstanceOf(dev.interlayer.runtime.ModuleLoadException.class);
        assertThat(fx.registry.failures().getLast().error()).contains("redirect must be a port");
    }

    // ---- datagram -------------------------------------------------------------------------------------------------

    /**
     * Datagrams sent: one starting with 'D' is dropped, one starting with 'I' is injected back toward the client
     * unchanged (and not sent), any other goes out reversed (written with emit). Datagrams received are flipped in place.
     */
    private static final String MIRROR = plugin("mirror", "datagram 1.1", "", STATE + """
            static int on_send(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m;
                conn_state *s = state;
                if (len > 0 && data[0] == 'D') return IL_DROP;
                if (len > 0 && data[0] == 'I') return host->inject(s->conn, IL_RECV, data, len, 7) == IL_OK ? IL_DROP : IL_ERR_FAILED;
                uint8_t *out = host->emit(call, len);
                if (!out) return IL_ERR_NOMEM;
                for (size_t i = 0; i < len; i++) out[i] = data[len - 1 - i];
                return IL_PASS;
            }
            static int on_recv(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m; (void) state; (void) data;
                uint8_t *p = host->rewrite(call);
                if (!p && len > 0) return IL_ERR_FAILED;
                for (size_t i = 0; i < len; i++) p[i] ^= 0x5a;
                return IL_PASS;
            }
            """
            + initvt("datagram", "mirror", 1, "vt->on_send = on_send; vt->on_recv = on_recv;"));

    private static byte[] reversed(byte[] b) {
        byte[] out = new byte[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[b.length - 1 - i];
        return out;
    }

    private static byte[] receive(DatagramSocket s) throws Exception {
        DatagramPacket p = new DatagramPacket(new byte[65536], 65536);
        s.receive(p);
        return Arrays.copyOf(p.getData(), p.getLength());
    }

    @Test
    void datagramHooksDropInjectEmitAndRewriteOnARealUdpListener() throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        UdpEchoServer echo = closer.later(new UdpEchoServer());
        LoadedModule m = load(fx, "mirror", MIRROR, Map.of());
        InetSocketAddress at = fx.engine.start(ListenerSpec.udp("u1", Role.CLIENT, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                echo.address()));
        Random r = new Random(18);
        try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            c.setSoTimeout(5000);
            List<byte[]> sent = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                byte[] d = new byte[1 + r.nextInt(1400)];
                r.nextBytes(d);
                d[0] = (byte) ('a' + i); // never 'D' or 'I'
                c.send(new DatagramPacket(d, d.length, at));
                assertThat(receive(c)).as("datagram %d: reversed out, echoed, flipped in", i).isEqualTo(xor(reversed(d)));
                sent.add(reversed(d));
            }
            byte[] drop = ascii("Drop me");
            c.send(new DatagramPacket(drop, drop.length, at));
            byte[] inject = ascii("Injected back");
            c.send(new DatagramPacket(inject, inject.length, at));
            assertThat(receive(c)).as("injected toward the client, past the module").isEqualTo(inject);
            c.setSoTimeout(200);
            assertThatThrownBy(() -> receive(c)).isInstanceOf(SocketTimeoutException.class);
            assertThat(echo.received).as("what the upstream got").containsExactlyElementsOf(sent);
        }
        assertThat(m.faults()).isZero();
    }

    // ---- the copy for chunks that are not one piece of native memory ----------------------------------------------

    /** Writes "[", the chunk as the module read it through its data pointer, "]". */
    private static final String FRAMER = plugin("framer", "stream 1.0", "", STATE + """
            static int on_send(void *m, void *state, il_call *call, const uint8_t *data, size_t len) {
                (void) m; (void) state;
                if (host->write(call, "[", 1) != IL_OK || host->write(call, data, len) != IL_OK || host->write(call, "]", 1) != IL_OK) {
                    return IL_ERR_NOMEM;
                }
                return IL_PASS;
            }
            """
            + initvt("stream", "framer", 0, "vt->on_send = on_send;"));

    @Test
    void heapAndCompositeChunksReachTheCModuleAsTheirBytes() throws Exception {
        Path so = CBuild.so(dir, "framer", FRAMER);
        try (EmbeddedEngine engine = EmbeddedEngine.builder().build()) {
            engine.registry().load(so, n -> config(n, Map.of()));
            Info info = new Info();
            EmbeddedConnection conn = engine.connect(info, engine.chainFor(info));
            Random r = new Random(18);
            byte[] a = new byte[3000], b = new byte[70_000], c = new byte[20_000], d = new byte[500];
            for (byte[] x : List.of(a, b, c, d)) r.nextBytes(x);
            // a heap buffer, a composite of a pooled direct and a heap part (larger than the first scratch copy), a pooled direct one
            conn.read(Direction.SEND, Unpooled.wrappedBuffer(a));
            CompositeByteBuf composite = Unpooled.compositeBuffer();
            ByteBuf direct = PooledByteBufAllocator.DEFAULT.directBuffer(b.length).writeBytes(b);
            composite.addComponents(true, direct, Unpooled.wrappedBuffer(c));
            conn.read(Direction.SEND, composite);
            conn.read(Direction.SEND, PooledByteBufAllocator.DEFAULT.directBuffer(d.length).writeBytes(d));
            engine.runUntilIdle();
            byte[] open = ascii("["), shut = ascii("]");
            assertThat(conn.delivered(Direction.SEND)).isEqualTo(concat(open, a, shut, open, b, c, shut, open, d, shut));
            assertThat(conn.isOpen()).as(String.valueOf(conn.closeReason())).isTrue();
        }
    }

    @Test
    void inAnAgentWhoseAllocatorGivesHeapBuffersTheCTagAfterTheJavaTagGetsTheJavaTagsBytes() throws Exception {
        // the allocator's choice is made once per JVM: this runs in one started with -Dio.netty.noPreferDirect=true
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-Dio.netty.noPreferDirect=true", "-Dio.netty.leakDetection.level=paranoid",
                "-cp", System.getProperty("java.class.path"), HeapChunkDriver.class.getName(), CBuild.TAG_C.toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(out).isZero();
        assertThat(out).contains("HEAP-DRIVER: OK, 300000 bytes each way through Java tag then C tag, faults 0").doesNotContain("LEAK");
    }

    /** A TCP connection on listener {@code copy}, role CLIENT, from the loopback. */
    private static final class Info implements dev.interlayer.api.ConnectionInfo {
        @Override public long id() { return 1; }
        @Override public dev.interlayer.api.Protocol protocol() { return dev.interlayer.api.Protocol.TCP; }
        @Override public String listener() { return "copy"; }
        @Override public Role role() { return Role.CLIENT; }
        @Override public InetSocketAddress localAddress() { return new InetSocketAddress("127.0.0.1", 40000); }
        @Override public InetSocketAddress remoteAddress() { return new InetSocketAddress("127.0.0.1", 9); }
        @Override public dev.interlayer.api.AppInfo app() { return null; }
        @Override public Instant startedAt() { return Instant.EPOCH; }
        @Override public long bytesSent() { return 0; }
        @Override public long bytesReceived() { return 0; }
    }
}
