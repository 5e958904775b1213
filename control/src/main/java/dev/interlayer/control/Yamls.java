package dev.interlayer.control;

import java.io.StringReader;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * Reads the control plane's YAML files (constraints, policies, policy test cases) as nodes, so every
 * error names the file and line it is about.
 */
final class Yamls {

    private Yamls() {}

    /** Parses {@code text}; an empty document is an empty mapping. */
    static Node parse(String source, String text) throws YamlException {
        LoaderOptions o = new LoaderOptions();
        o.setAllowDuplicateKeys(false);
        o.setMaxAliasesForCollections(10);
        o.setCodePointLimit(4 * 1024 * 1024);
        try {
            Node n = new Yaml(o).compose(new StringReader(text));
            return n == null ? new MappingNode(org.yaml.snakeyaml.nodes.Tag.MAP, List.of(), org.yaml.snakeyaml.DumperOptions.FlowStyle.BLOCK) : n;
        } catch (MarkedYAMLException e) {
            int line = e.getProblemMark() == null ? 0 : e.getProblemMark().getLine() + 1;
            throw new YamlException(source + ":" + line + ": not valid YAML: " + e.getProblem());
        } catch (YAMLException e) {
            throw new YamlException(source + ": not valid YAML: " + e.getMessage());
        }
    }

    static int line(Node n) {
        return n.getStartMark() == null ? 0 : n.getStartMark().getLine() + 1;
    }

    static YamlException error(String source, Node at, String message) {
        return new YamlException(source + ":" + line(at) + ": " + message);
    }

    /** The entries of a mapping node, keys as text, in file order. */
    static Map<String, Node> map(String source, Node n, String what) throws YamlException {
        if (!(n instanceof MappingNode m)) {
            throw error(source, n, what + " must be a mapping (key: value lines)");
        }
        Map<String, Node> out = new LinkedHashMap<>();
        for (NodeTuple t : m.getValue()) {
            if (!(t.getKeyNode() instanceof ScalarNode k)) {
                throw error(source, t.getKeyNode(), "keys of " + what + " must be plain words");
            }
            out.put(k.getValue(), t.getValueNode());
        }
        return out;
    }

    /** The key nodes of a mapping, for error lines. */
    static Map<String, Node> keys(Node n) {
        Map<String, Node> out = new LinkedHashMap<>();
        if (n instanceof MappingNode m) {
            for (NodeTuple t : m.getValue()) {
                if (t.getKeyNode() instanceof ScalarNode k) {
                    out.put(k.getValue(), k);
                }
            }
        }
        return out;
    }

    /** Refuses keys outside {@code allowed}, naming the allowed ones. */
    static void onlyKeys(String source, Node n, String what, List<String> allowed) throws YamlException {
        for (Map.Entry<String, Node> e : keys(n).entrySet()) {
            if (!allowed.contains(e.getKey())) {
                throw error(source, e.getValue(), "unknown key '" + e.getKey() + "' in " + what + "; expected one of " + String.join(", ", allowed));
            }
        }
    }

    /** A scalar's text. */
    static String scalar(String source, Node n, String what) throws YamlException {
        if (!(n instanceof ScalarNode s)) {
            throw error(source, n, what + " must be a single value, not a list or mapping");
        }
        return s.getValue();
    }

    /** A scalar or a list of scalars, as a list of texts. */
    static List<String> scalars(String source, Node n, String what) throws YamlException {
        List<String> out = new ArrayList<>();
        if (n instanceof ScalarNode s) {
            out.add(s.getValue());
        } else if (n instanceof SequenceNode seq) {
            for (Node item : seq.getValue()) {
                out.add(scalar(source, item, "each item of " + what));
            }
        } else {
            throw error(source, n, what + " must be a value or a list of values");
        }
        return out;
    }

    /** The items of a sequence node. */
    static List<Node> list(String source, Node n, String what) throws YamlException {
        if (!(n instanceof SequenceNode seq)) {
            throw error(source, n, what + " must be a list (lines starting with '- ')");
        }
        return seq.getValue();
    }

    static long integer(String source, Node n, String what) throws YamlException {
        String s = scalar(source, n, what);
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            throw error(source, n, what + " must be a whole number, got '" + s + "'");
        }
    }

    static boolean bool(String source, Node n, String what) throws YamlException {
        String s = scalar(source, n, what).strip();
        return switch (s) {
            case "true", "yes", "on" -> true;
            case "false", "no", "off" -> false;
            default -> throw error(source, n, what + " must be true or false, got '" + s + "'");
        };
    }
}
