package dev.interlayer.modules.mtlsidentity;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsHandshake;
import dev.interlayer.api.TlsModule;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * Gives a client that presented a certificate an identity when its handshake completes, so that stream modules
 * ({@code attachment.connection().tls(Side.REMOTE).identity()}), the {@code tls-identity} selector and the connection
 * listing see who it is: the certificate's whole subject, its common name, or its first URI, DNS or e-mail subject
 * alternative name ({@code from}). A client without a certificate, or without that field, gets no identity.
 *
 * <pre>{@code
 * listeners:
 *   - name: api
 *     tls: {cert: server.crt, key: server.key, ca: clients-ca.crt, client-auth: required, module: mtls-identity}
 * modules:
 *   - name: mtls-identity
 *     jar: sample-modules/module-mtls-identity.jar
 *     params: {from: san-uri}      # spiffe://example.org/web
 * }</pre>
 */
public final class MtlsIdentityModule implements TlsModule<Void> {

    /** Where the identity comes from. */
    enum From { SUBJECT, CN, SAN_URI, SAN_DNS, SAN_EMAIL }

    private From from;
    private String prefix;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("mtls-identity", "1.0.0")
                .description("gives a client its certificate's subject, CN or SAN as its identity (TlsInfo.identity, tls-identity selector)")
                .implement(InterfaceType.TLS, 1, 0)
                .param(Param.ofString("from", "cn", "subject, cn, san-uri, san-dns or san-email"))
                .param(Param.ofString("prefix", "", "put before the identity, e.g. 'user:'"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        String f = env.params().getString("from").toLowerCase(Locale.ROOT);
        from = switch (f) {
            case "subject" -> From.SUBJECT;
            case "cn" -> From.CN;
            case "san-uri" -> From.SAN_URI;
            case "san-dns" -> From.SAN_DNS;
            case "san-email" -> From.SAN_EMAIL;
            default -> throw new IllegalArgumentException("from '" + f + "' is not known; use subject, cn, san-uri, san-dns or san-email");
        };
        prefix = env.params().getString("prefix");
    }

    @Override
    public String handshakeCompleted(TlsHandshake handshake, TlsFunctions defaults) {
        if (handshake.tls() == null || handshake.tls().peerCertificates().isEmpty()) return defaults.handshakeCompleted(handshake);
        String id = identity(handshake.tls().peerCertificates().getFirst(), from);
        return id == null ? null : prefix + id;
    }

    /** The identity {@code from} reads from {@code c}, or null when it has none. */
    static String identity(X509Certificate c, From from) {
        return switch (from) {
            case SUBJECT -> c.getSubjectX500Principal().getName();
            case CN -> cn(c.getSubjectX500Principal().getName());
            case SAN_URI -> san(c, 6);
            case SAN_DNS -> san(c, 2);
            case SAN_EMAIL -> san(c, 1);
        };
    }

    private static String cn(String subject) {
        try {
            List<Rdn> rdns = new LdapName(subject).getRdns();
            for (int i = rdns.size() - 1; i >= 0; i--) { // LdapName lists the most significant last: the CN nearest the leaf's end
                if (rdns.get(i).getType().equalsIgnoreCase("CN")) return String.valueOf(rdns.get(i).getValue());
            }
        } catch (InvalidNameException e) {
            return null;
        }
        return null;
    }

    private static String san(X509Certificate c, int type) {
        try {
            Collection<List<?>> names = c.getSubjectAlternativeNames();
            if (names == null) return null;
            for (List<?> n : names) {
                if (n.size() >= 2 && n.get(0) instanceof Integer t && t == type) return String.valueOf(n.get(1));
            }
        } catch (CertificateParsingException e) {
            return null;
        }
        return null;
    }
}
