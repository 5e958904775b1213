package dev.interlayer.modules.snicert;

import dev.interlayer.api.ClientHello;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.TlsCertificate;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsModule;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Chooses the certificate a client sees from a folder, by the server name it asks for (SNI): {@code NAME.crt} (PEM chain,
 * the leaf first) and {@code NAME.key} (PEM PKCS#8 key) serve {@code NAME}; {@code _.example.com.crt}/{@code .key} serve
 * {@code *.example.com}. A name without files, or no name, gets the listener's own certificate (its {@code tls:} block).
 *
 * <p>Files dropped into the folder while the agent runs serve the next handshake that asks for their name; a name is
 * looked for again at most every {@code rescan}, and so are changed files, so a handshake costs a map lookup, not a file
 * system call. The agent loads and checks each certificate as its own ({@link TlsFunctions#certificate}) and keeps what TLS
 * needs with it, so a handshake never rebuilds anything.
 *
 * <pre>{@code
 * listeners:
 *   - name: web
 *     tls: {cert: default.crt, key: default.key, module: sni-cert}
 * modules:
 *   - name: sni-cert
 *     jar: sample-modules/module-sni-cert.jar
 *     params: {folder: /etc/interlayer/certs, rescan: 2s}
 * }</pre>
 */
public final class SniCertModule implements TlsModule<Void> {

    /** A server name as SNI carries it: nothing that could leave the folder. */
    private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*");

    /** What the folder held for a name when last looked at: its certificate, or null (the listener's own serves). */
    private record Found(TlsCertificate cert, long checkedAt) {}

    private final ConcurrentHashMap<String, Found> byName = new ConcurrentHashMap<>();
    private Path folder;
    private long rescanNanos;
    private ModuleEnv env;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("sni-cert", "1.0.0")
                .description("chooses the certificate by the client's server name (SNI) from a folder of NAME.crt/NAME.key files")
                .implement(InterfaceType.TLS, 1, 0)
                .param(Param.ofString("folder", "", "the folder of NAME.crt and NAME.key files (required)"))
                .param(Param.ofDuration("rescan", Duration.ofSeconds(1), "how often a name is looked for again in the folder"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        String f = env.params().getString("folder");
        if (f == null || f.isBlank()) {
            throw new IllegalArgumentException("param folder is required: the folder of NAME.crt and NAME.key files");
        }
        folder = Path.of(f);
        if (!Files.isDirectory(folder)) {
            throw new IllegalArgumentException("folder " + folder + " is not a folder; create it, or set param folder to the folder of"
                    + " NAME.crt and NAME.key files");
        }
        rescanNanos = env.params().getDuration("rescan").toNanos();
        this.env = env;
    }

    @Override
    public TlsCertificate selectCertificate(ClientHello hello, TlsFunctions defaults) {
        String name = hello.serverName();
        if (name == null || !NAME.matcher(name).matches()) return defaults.selectCertificate(hello);
        long now = env.nanoTime();
        Found found = byName.get(name);
        if (found == null || now - found.checkedAt() >= rescanNanos) {
            found = new Found(look(name, defaults), now);
            byName.put(name, found);
        }
        return found.cert() != null ? found.cert() : defaults.selectCertificate(hello);
    }

    /** The certificate for {@code name}: its own files, else the wildcard's of its parent, else null. */
    private TlsCertificate look(String name, TlsFunctions defaults) {
        TlsCertificate c = load(name, defaults);
        int dot = name.indexOf('.');
        if (c == null && dot > 0 && name.indexOf('.', dot + 1) > 0) c = load("_" + name.substring(dot), defaults);
        return c;
    }

    private TlsCertificate load(String base, TlsFunctions defaults) {
        Path crt = folder.resolve(base + ".crt");
        Path key = folder.resolve(base + ".key");
        if (!Files.isRegularFile(crt) || !Files.isRegularFile(key)) return null;
        try {
            return defaults.certificate(crt, key, null); // unchanged files: the handle the agent already has
        } catch (IllegalArgumentException e) {
            env.log().error(1, "%s: %s; the listener's own certificate serves %s until the files are fixed", base, e.getMessage(), base);
            return null;
        }
    }
}
