package dev.interlayer.api;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * One session ticket key of a terminating listener (provider {@code openssl}): a 16-byte name that tickets carry in the
 * clear, so the agent finds the key that decrypts them, a 16-byte HMAC key and a 16-byte AES key. The secrets never
 * appear in {@link #toString()}. Immutable: every accessor returns a copy.
 *
 * <p>The bytes of {@link #encoded()} (name, HMAC key, AES key: 48 bytes) are the format of a {@code ticket-keys} file, as
 * made by {@code openssl rand 48 > ticket.key}.
 */
public final class TlsTicketKey {

    /** Bytes of each part, and of the whole key. */
    public static final int PART = 16;
    public static final int SIZE = 3 * PART;

    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] bytes;

    private TlsTicketKey(byte[] bytes) {
        this.bytes = bytes;
    }

    /**
     * A key from its 48 bytes: name, HMAC key, AES key.
     *
     * @throws IllegalArgumentException if {@code encoded} is not 48 bytes long
     */
    public static TlsTicketKey of(byte[] encoded) {
        if (encoded == null || encoded.length != SIZE) {
            throw new IllegalArgumentException("a session ticket key is " + SIZE + " bytes (16 name, 16 HMAC key, 16 AES key), not "
                    + (encoded == null ? "null" : encoded.length + " bytes") + "; make one with: openssl rand 48 > ticket.key");
        }
        return new TlsTicketKey(encoded.clone());
    }

    /** A new key of 48 bytes from a strong random source. */
    public static TlsTicketKey random() {
        byte[] b = new byte[SIZE];
        RANDOM.nextBytes(b);
        return new TlsTicketKey(b);
    }

    /** The 16-byte name tickets encrypted with this key carry. */
    public byte[] name() {
        return Arrays.copyOfRange(bytes, 0, PART);
    }

    /** The 16-byte HMAC key. */
    public byte[] hmacKey() {
        return Arrays.copyOfRange(bytes, PART, 2 * PART);
    }

    /** The 16-byte AES key. */
    public byte[] aesKey() {
        return Arrays.copyOfRange(bytes, 2 * PART, SIZE);
    }

    /** The 48 bytes: name, HMAC key, AES key. */
    public byte[] encoded() {
        return bytes.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TlsTicketKey k && MessageDigest.isEqual(bytes, k.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    /** {@code ticket key 0a1b…} with the name only. */
    @Override
    public String toString() {
        return "ticket key " + HexFormat.of().formatHex(bytes, 0, PART);
    }
}
