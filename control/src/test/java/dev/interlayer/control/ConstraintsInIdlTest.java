package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.ModuleDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * The limits constraints.yaml enforces are written in the comments of control.proto, which is what a foreign client's
 * author reads (the generated code and server reflection carry no constraints): every field constraint in the comment
 * of its field, the formats, defaults and the message cap in the file's header, the stream rule at its method. And the
 * module name and version formats are the rules a module's descriptor follows.
 */
class ConstraintsInIdlTest {

    static String resource(String path) throws IOException {
        try (InputStream in = ConstraintsInIdlTest.class.getResourceAsStream(path)) {
            assertThat(in).as(path + " on the class path").isNotNull();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static final Pattern MESSAGE = Pattern.compile("^message (\\w+) \\{");
    static final Pattern FIELD = Pattern.compile("^\\s+(?:repeated )?(?:map<[^>]+>|[\\w.]+) (\\w+) = \\d+;");
    static final Pattern ONEOF = Pattern.compile("^\\s+oneof (\\w+) \\{");
    static final Pattern RPC = Pattern.compile("^\\s+rpc (\\w+)\\(");
    static final Pattern SERVICE = Pattern.compile("^service (\\w+) \\{");

    /** The IDL's comments: "header" for the file's first block, "Message.field" (or oneof) and "Service.Method" for the block above each. */
    static Map<String, String> comments(String proto) {
        Map<String, String> out = new HashMap<>();
        List<String> block = new ArrayList<>();
        String scope = null;
        boolean header = true;
        for (String line : proto.split("\n")) {
            String t = line.strip();
            if (t.startsWith("//")) {
                block.add(t.substring(2).strip());
                continue;
            }
            if (header) {
                out.put("header", String.join("\n", block));
                header = false;
            }
            Matcher m;
            if ((m = MESSAGE.matcher(line)).find() || (m = SERVICE.matcher(line)).find()) {
                scope = m.group(1);
            } else if ((m = FIELD.matcher(line)).find() || (m = ONEOF.matcher(line)).find() || (m = RPC.matcher(line)).find()) {
                out.put(scope + "." + m.group(1), String.join(" ", block));
            }
            block.clear();
        }
        return out;
    }

    @Test
    @SuppressWarnings("unchecked")
    void everyConstraintIsWrittenInTheCommentOfItsFieldAndTheFileHeader() throws Exception {
        Map<String, Object> yaml = new Yaml().load(resource(Constraints.RESOURCE));
        Map<String, String> comments = comments(resource("/interlayer/control/v1/control.proto"));
        String headerLines = comments.get("header");
        String header = headerLines.replace('\n', ' ');
        List<String> missing = new ArrayList<>();

        Map<String, Object> defaults = (Map<String, Object>) yaml.get("defaults");
        for (String[] d : new String[][] {{"max-length", "characters"}, {"max-bytes", "bytes field at most"}, {"max-items", "items"}}) {
            String phrase = d[1].equals("characters") ? "at most " + defaults.get(d[0]) + " characters"
                    : d[1].equals("items") ? "at most " + defaults.get(d[0]) + " items" : "bytes field at most " + defaults.get(d[0]) + " bytes";
            check(missing, "header", header, "default " + d[0], phrase);
        }
        check(missing, "header", header, "the message cap", "at most " + ControlServer.MAX_MESSAGE + " bytes");
        for (Map.Entry<String, Object> f : ((Map<String, Object>) yaml.get("formats")).entrySet()) {
            Pattern line = Pattern.compile("(?m)^" + Pattern.quote(f.getKey()) + " +=" + " " + Pattern.quote(f.getValue().toString()) + "$");
            if (!line.matcher(headerLines).find()) {
                missing.add("header: format " + f.getKey() + " = " + f.getValue());
            }
        }

        for (Map.Entry<String, Object> msg : ((Map<String, Object>) yaml.get("messages")).entrySet()) {
            String message = msg.getKey().substring(msg.getKey().lastIndexOf('.') + 1);
            for (Map.Entry<String, Object> field : ((Map<String, Object>) msg.getValue()).entrySet()) {
                String where = message + "." + field.getKey();
                String comment = comments.get(where);
                if (comment == null) {
                    missing.add(where + ": no such field in control.proto");
                    continue;
                }
                Map<String, Object> rule = (Map<String, Object>) field.getValue();
                if (Boolean.TRUE.equals(rule.get("required"))) check(missing, where, comment, "required", "required");
                if (rule.containsKey("format")) check(missing, where, comment, "format", "format " + rule.get("format"));
                if (rule.containsKey("pattern")) check(missing, where, comment, "pattern", rule.get("pattern").toString());
                if (rule.containsKey("max-length")) check(missing, where, comment, "max-length", "at most " + rule.get("max-length") + " characters");
                if (rule.containsKey("min-length")) check(missing, where, comment, "min-length", "at least " + rule.get("min-length") + " characters");
                if (rule.containsKey("max-bytes")) check(missing, where, comment, "max-bytes", "at most " + rule.get("max-bytes") + " bytes");
                if (rule.containsKey("max-items")) check(missing, where, comment, "max-items", "at most " + rule.get("max-items") + " items");
                if (rule.containsKey("min") && rule.containsKey("max")) {
                    check(missing, where, comment, "min and max", rule.get("min") + " to " + rule.get("max"));
                } else if (rule.containsKey("min")) {
                    check(missing, where, comment, "min", "at least " + rule.get("min"));
                } else if (rule.containsKey("max")) {
                    check(missing, where, comment, "max", "at most " + rule.get("max"));
                }
                if (rule.containsKey("enum")) {
                    for (Object v : (List<Object>) rule.get("enum")) check(missing, where, comment, "enum", v.toString());
                }
            }
        }

        for (Map.Entry<String, Object> stream : ((Map<String, Object>) yaml.get("streams")).entrySet()) {
            String comment = comments.get(stream.getKey());
            Map<String, Object> rule = (Map<String, Object>) stream.getValue();
            check(missing, stream.getKey(), comment, "first", "first message must set " + rule.get("first"));
            check(missing, stream.getKey(), comment, "rest", "every later one " + rule.get("rest"));
            check(missing, stream.getKey(), comment, "max-total-bytes", "at most " + rule.get("max-total-bytes") + " bytes");
        }
        assertThat(missing).as("constraints.yaml limits that control.proto's comments do not state").isEmpty();
    }

    private static void check(List<String> missing, String where, String comment, String what, String phrase) {
        if (comment == null || !comment.contains(phrase)) {
            missing.add(where + ": " + what + " (expected \"" + phrase + "\" in: " + comment + ")");
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void moduleNameAndVersionFormatsAreTheRulesOfAModuleDescriptor() throws Exception {
        Map<String, Object> formats = (Map<String, Object>) new Yaml().<Map<String, Object>>load(resource(Constraints.RESOURCE)).get("formats");
        assertThat(formats.get("module-name")).isEqualTo(ModuleDescriptor.NAME.pattern());
        assertThat(formats.get("module-version")).isEqualTo(ModuleDescriptor.VERSION.pattern());
        assertThat(formats.get("module-id")).isEqualTo(ModuleDescriptor.NAME.pattern() + "@" + ModuleDescriptor.VERSION.pattern());
    }
}
