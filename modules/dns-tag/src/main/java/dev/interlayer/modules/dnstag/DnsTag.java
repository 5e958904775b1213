package dev.interlayer.modules.dnstag;

import java.io.ByteArrayOutputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * The tag's wire format and the DNS parsing both modules share: an EDNS(0) option (RFC 6891) in the OPT record of
 * a query's additional section.
 *
 * <pre>
 *   OPT RR option:  OPTION-CODE (2 bytes, default 65001, from the local/experimental range 65001-65534)
 *                   OPTION-LENGTH (2 bytes) = 1 + length of the app id
 *                   FLAGS (1 byte): bit 0 set = the tagger added the whole OPT RR (the query had none)
 *                   APP-ID (UTF-8, 1..255 bytes)
 * </pre>
 *
 * <p>A query that has an OPT RR gets the option appended to it; one without gets a new OPT RR at the end of the
 * additional section (root name, type 41, UDP payload size 512 so the server answers as it would without EDNS,
 * extended RCODE 0, version 0, no flags) and ARCOUNT + 1. The inverse removes exactly that option, and the OPT RR
 * too when flag bit 0 says the tagger added it, restoring the original query byte for byte.
 *
 * <p>Stateless and thread-safe.
 */
final class DnsTag {

    /** EDNS option code used unless configured: the first of the local/experimental range. */
    static final int DEFAULT_OPTION_CODE = 65001;
    static final int FLAG_ADDED_OPT = 1;
    static final int TYPE_OPT = 41;
    /** UDP payload size advertised in an OPT RR the tagger adds: 512, the size a server assumes without EDNS. */
    static final int ADDED_OPT_PAYLOAD = 512;
    static final int MAX_DATAGRAM = 65_507;

    private DnsTag() {}

    /** Why a datagram was not handled: a stated reason for the counters and the log. */
    static final class Malformed extends Exception {
        Malformed(String why) {
            super(why, null, false, false);
        }
    }

    /** Where the OPT RR is, if any. */
    record Layout(int arCountOffset, int optStart, int optRdLengthOffset, int optRdataStart, int optEnd) {
        boolean hasOpt() {
            return optStart >= 0;
        }
    }

    /**
     * Parses the header and walks the sections of a DNS query to find the OPT RR.
     *
     * @throws Malformed if it is not a DNS query this module can walk (too short, a response, truncated records)
     */
    static Layout parseQuery(byte[] m) throws Malformed {
        if (m.length < 12) throw new Malformed("shorter than a DNS header (" + m.length + " bytes)");
        if ((m[2] & 0x80) != 0) throw new Malformed("a DNS response, not a query");
        int qd = u16(m, 4);
        int an = u16(m, 6);
        int ns = u16(m, 8);
        int ar = u16(m, 10);
        int p = 12;
        for (int i = 0; i < qd; i++) {
            p = skipName(m, p);
            p = need(m, p, 4);
        }
        for (int i = 0; i < an + ns; i++) {
            p = skipRecord(m, p);
        }
        int optStart = -1;
        int optRdLen = -1;
        int optRdata = -1;
        int optEnd = -1;
        for (int i = 0; i < ar; i++) {
            int start = p;
            int afterName = skipName(m, p);
            need(m, afterName, 10);
            int type = u16(m, afterName);
            p = skipRecord(m, p);
            if (type == TYPE_OPT) {
                if (optStart >= 0) throw new Malformed("more than one OPT record");
                optStart = start;
                optRdLen = afterName + 8;
                optRdata = afterName + 10;
                optEnd = p;
            }
        }
        if (p != m.length) throw new Malformed((m.length - p) + " bytes after the last record");
        return new Layout(10, optStart, optRdLen, optRdata, optEnd);
    }

    /** The query {@code m} with the tag inserted; {@code m} must have passed {@link #parseQuery}. */
    static byte[] insert(byte[] m, Layout l, int code, byte[] appId) throws Malformed {
        if (l.hasOpt() && findOption(m, l, code) >= 0) throw new Malformed("already carries option " + code);
        ByteArrayOutputStream out = new ByteArrayOutputStream(m.length + appId.length + 16);
        byte[] option = option(code, appId, !l.hasOpt());
        if (l.hasOpt()) {
            int rdlen = u16(m, l.optRdLengthOffset()) + option.length;
            if (rdlen > 0xFFFF) throw new Malformed("the OPT record would exceed 65535 bytes");
            out.write(m, 0, l.optRdLengthOffset());
            out.write(rdlen >> 8);
            out.write(rdlen);
            out.write(m, l.optRdataStart(), l.optEnd() - l.optRdataStart());
            out.write(option, 0, option.length);
            out.write(m, l.optEnd(), m.length - l.optEnd());
        } else {
            int ar = u16(m, 10) + 1;
            if (ar > 0xFFFF) throw new Malformed("ARCOUNT would overflow");
            out.write(m, 0, m.length);
            out.write(0);                                   // root name
            out.write(0);
            out.write(TYPE_OPT);                            // TYPE OPT
            out.write(ADDED_OPT_PAYLOAD >> 8);
            out.write(ADDED_OPT_PAYLOAD & 0xFF);            // CLASS = UDP payload size
            out.write(0);
            out.write(0);
            out.write(0);
            out.write(0);                                   // TTL = ext. RCODE, version, flags
            out.write(option.length >> 8);
            out.write(option.length);                       // RDLENGTH
            out.write(option, 0, option.length);
        }
        byte[] r = out.toByteArray();
        if (!l.hasOpt()) {
            int ar = u16(m, 10) + 1;
            r[10] = (byte) (ar >> 8);
            r[11] = (byte) ar;
        }
        if (r.length > MAX_DATAGRAM) throw new Malformed("the tagged query would exceed the UDP limit");
        return r;
    }

    /** A found tag: the app id, and the query with the tag (and an OPT RR the tagger added) removed. */
    record Removed(String appId, byte[] query) {}

    /**
     * Removes option {@code code} from query {@code m}, or returns null if the query has no such option.
     *
     * @throws Malformed if the option is there but not a valid tag (bad flags, empty or non-UTF-8 app id, or
     *     flag "added OPT" on an OPT RR with other options or other contents than the tagger writes)
     */
    static Removed remove(byte[] m, Layout l, int code) throws Malformed {
        if (!l.hasOpt()) return null;
        int at = findOption(m, l, code);
        if (at < 0) return null;
        int len = u16(m, at + 2);
        if (len < 2) throw new Malformed("tag option of " + len + " bytes: no app id");
        int flags = m[at + 4] & 0xFF;
        if ((flags & ~FLAG_ADDED_OPT) != 0) throw new Malformed("unknown tag flags 0x" + Integer.toHexString(flags));
        String appId;
        try {
            appId = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(m, at + 5, len - 1)).toString();
        } catch (CharacterCodingException e) {
            throw new Malformed("app id is not UTF-8");
        }
        int optionEnd = at + 4 + len;
        ByteArrayOutputStream out = new ByteArrayOutputStream(m.length);
        if ((flags & FLAG_ADDED_OPT) != 0) {
            int rdlen = u16(m, l.optRdLengthOffset());
            if (rdlen != 4 + len || m[l.optStart()] != 0 || u16(m, l.optRdLengthOffset() - 6) != ADDED_OPT_PAYLOAD
                    || u16(m, l.optRdLengthOffset() - 4) != 0 || u16(m, l.optRdLengthOffset() - 2) != 0) {
                throw new Malformed("tag says the tagger added the OPT record, but the record holds more than the tag");
            }
            out.write(m, 0, l.optStart());
            out.write(m, l.optEnd(), m.length - l.optEnd());
            byte[] r = out.toByteArray();
            int ar = u16(m, 10) - 1;
            r[10] = (byte) (ar >> 8);
            r[11] = (byte) ar;
            return new Removed(appId, r);
        }
        int rdlen = u16(m, l.optRdLengthOffset()) - (4 + len);
        out.write(m, 0, l.optRdLengthOffset());
        out.write(rdlen >> 8);
        out.write(rdlen);
        out.write(m, l.optRdataStart(), at - l.optRdataStart());
        out.write(m, optionEnd, m.length - optionEnd);
        return new Removed(appId, out.toByteArray());
    }

    /** Offset of option {@code code} in the OPT RR's RDATA, or -1. */
    static int findOption(byte[] m, Layout l, int code) throws Malformed {
        int p = l.optRdataStart();
        while (p < l.optEnd()) {
            if (p + 4 > l.optEnd()) throw new Malformed("truncated EDNS option");
            int c = u16(m, p);
            int len = u16(m, p + 2);
            if (p + 4 + len > l.optEnd()) throw new Malformed("EDNS option longer than its OPT record");
            if (c == code) return p;
            p += 4 + len;
        }
        return -1;
    }

    static byte[] option(int code, byte[] appId, boolean addedOpt) {
        byte[] o = new byte[5 + appId.length];
        o[0] = (byte) (code >> 8);
        o[1] = (byte) code;
        o[2] = (byte) ((1 + appId.length) >> 8);
        o[3] = (byte) (1 + appId.length);
        o[4] = (byte) (addedOpt ? FLAG_ADDED_OPT : 0);
        System.arraycopy(appId, 0, o, 5, appId.length);
        return o;
    }

    private static int skipName(byte[] m, int p) throws Malformed {
        for (int labels = 0; labels < 128; labels++) {
            need(m, p, 1);
            int len = m[p] & 0xFF;
            if (len == 0) return p + 1;
            if ((len & 0xC0) == 0xC0) return need(m, p, 2);
            if ((len & 0xC0) != 0) throw new Malformed("bad label type 0x" + Integer.toHexString(len));
            p = need(m, p, 1 + len);
        }
        throw new Malformed("name with more than 127 labels");
    }

    private static int skipRecord(byte[] m, int p) throws Malformed {
        p = skipName(m, p);
        need(m, p, 10);
        int rdlen = u16(m, p + 8);
        return need(m, p, 10 + rdlen);
    }

    /** {@code p + n}, checking that the message has those bytes. */
    private static int need(byte[] m, int p, int n) throws Malformed {
        if (p + n > m.length) throw new Malformed("truncated at byte " + p);
        return p + n;
    }

    static int u16(byte[] m, int p) {
        return (m[p] & 0xFF) << 8 | (m[p + 1] & 0xFF);
    }
}
