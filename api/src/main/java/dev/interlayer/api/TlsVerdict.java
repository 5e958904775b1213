package dev.interlayer.api;

/**
 * What {@link TlsModule#verifyPeer} decides about a peer's certificate chain.
 *
 * @param accepted true to let the handshake go on
 * @param reason why the chain is refused (logged with the module's name and sent as a bad_certificate alert); null when accepted
 */
public record TlsVerdict(boolean accepted, String reason) {

    private static final TlsVerdict ACCEPT = new TlsVerdict(true, null);

    public TlsVerdict {
        if (!accepted && (reason == null || reason.isBlank())) throw new IllegalArgumentException("a refusal needs a reason");
    }

    /** Accepts the chain. */
    public static TlsVerdict accept() {
        return ACCEPT;
    }

    /** Refuses the chain, saying why. */
    public static TlsVerdict refuse(String reason) {
        return new TlsVerdict(false, reason);
    }
}
