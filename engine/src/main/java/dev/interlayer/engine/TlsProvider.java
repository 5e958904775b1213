package dev.interlayer.engine;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslProvider;
import java.lang.System.Logger.Level;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Which TLS implementation a {@link TlsSettings.Provider} gets here: BoringSSL (netty-tcnative) when its native library
 * loads, the JDK's otherwise. A missing native library is one log line, never a failure.
 */
public final class TlsProvider {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private TlsProvider() {}

    /** The Netty provider for {@code asked}; reference-counted BoringSSL contexts are released by {@link TlsContexts#close}. */
    static SslProvider resolve(TlsSettings.Provider asked) {
        if (asked == TlsSettings.Provider.JDK) return SslProvider.JDK;
        if (OpenSsl.isAvailable()) return SslProvider.OPENSSL_REFCNT;
        if (WARNED.compareAndSet(false, true)) {
            LOG.log(Level.WARNING, "TLS provider openssl unavailable ({0}); using the JDK''s TLS instead. The native library comes with "
                    + "netty-tcnative-boringssl-static for linux-x86_64; set provider: jdk to silence this", whyNot());
        }
        return SslProvider.JDK;
    }

    /** The provider's name as configs and status show it. */
    static String name(SslProvider p) {
        return p == SslProvider.JDK ? "jdk" : "openssl";
    }

    /**
     * What {@code provider: openssl} (the default) runs on this agent, for {@code interlayer status}: {@code openssl
     * (BoringSSL)} or {@code jdk (openssl unavailable: why)}.
     */
    public static String describe() {
        return OpenSsl.isAvailable() ? "openssl (" + OpenSsl.versionString() + ")" : "jdk (openssl unavailable: " + whyNot() + ")";
    }

    private static String whyNot() {
        Throwable t = OpenSsl.unavailabilityCause();
        return t == null ? "unknown" : String.valueOf(t.getMessage() == null ? t : t.getMessage());
    }
}
