package dev.interlayer.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import java.math.BigInteger;
import java.util.Map;

/**
 * A control message as one line of JSON for scripts: protobuf's JSON mapping with the IDL's field names, changed
 * in two ways a script needs. Every field is there, in IDL order: a field at its default value too (uid 0,
 * {@code connections: 0}, an empty list), and {@code null} for a message field that is not set. And 64-bit integers
 * are JSON numbers, not the strings the mapping makes of them (they stay exact: the text is the decimal value).
 */
final class JsonOut {

    private static final JsonFormat.Printer PRINTER = JsonFormat.printer().includingDefaultValueFields().preservingProtoFieldNames()
            .omittingInsignificantWhitespace();
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    private JsonOut() {}

    /** The message as one line of JSON. */
    static String print(MessageOrBuilder m) throws InvalidProtocolBufferException {
        JsonObject mapped = JsonParser.parseString(PRINTER.print(m)).getAsJsonObject();
        return GSON.toJson(message(m.getDescriptorForType(), mapped));
    }

    private static JsonObject message(Descriptor type, JsonObject in) {
        JsonObject out = new JsonObject();
        for (FieldDescriptor f : type.getFields()) {
            JsonElement v = in.get(f.getName());
            if (v == null) {
                // the mapping leaves out what has presence and is unset: a message field, a oneof member
                if (f.getRealContainingOneof() == null && !f.isRepeated()) {
                    out.add(f.getName(), JsonNull.INSTANCE);
                }
                continue;
            }
            out.add(f.getName(), field(f, v));
        }
        return out;
    }

    private static JsonElement field(FieldDescriptor f, JsonElement v) {
        if (f.isMapField()) {
            FieldDescriptor value = f.getMessageType().findFieldByName("value");
            JsonObject out = new JsonObject();
            for (Map.Entry<String, JsonElement> e : v.getAsJsonObject().entrySet()) {
                out.add(e.getKey(), single(value, e.getValue()));
            }
            return out;
        }
        if (f.isRepeated()) {
            JsonArray out = new JsonArray();
            for (JsonElement e : v.getAsJsonArray()) {
                out.add(single(f, e));
            }
            return out;
        }
        return single(f, v);
    }

    private static JsonElement single(FieldDescriptor f, JsonElement v) {
        if (v.isJsonNull()) {
            return v;
        }
        return switch (f.getType()) {
            case MESSAGE -> message(f.getMessageType(), v.getAsJsonObject());
            case INT64, UINT64, SINT64, FIXED64, SFIXED64 -> new JsonPrimitive(new BigInteger(v.getAsString()));
            default -> v;
        };
    }
}
