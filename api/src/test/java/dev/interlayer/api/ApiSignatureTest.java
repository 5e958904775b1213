package dev.interlayer.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Compares the SDK's public API with the signature file checked in at {@code api/api-signature.txt}, so that a
 * change to what module authors compile against is a decision, not an accident.
 *
 * <p>To accept a change: {@code ./mvnw -pl api test -Dinterlayer.api.updateSignature=true}, then review and
 * commit the file. A removed or changed line breaks existing modules: that needs a new major version of the
 * interface it touches; additions need a new minor.
 */
class ApiSignatureTest {

    private static final Path SIGNATURE = Path.of("api-signature.txt");

    @Test
    void thePublicApiMatchesTheCheckedInSignatureFile() throws Exception {
        String actual = String.join("\n", signature()) + "\n";
        if (Boolean.getBoolean("interlayer.api.updateSignature")) {
            Files.writeString(SIGNATURE, actual);
            return;
        }
        assertThat(SIGNATURE).as("api/api-signature.txt is missing; create it with -Dinterlayer.api.updateSignature=true").exists();
        String expected = Files.readString(SIGNATURE);
        if (!expected.equals(actual)) {
            List<String> want = expected.lines().toList();
            List<String> got = actual.lines().toList();
            String removed = want.stream().filter(l -> !got.contains(l)).map(l -> "  - " + l).collect(Collectors.joining("\n"));
            String added = got.stream().filter(l -> !want.contains(l)).map(l -> "  + " + l).collect(Collectors.joining("\n"));
            throw new AssertionError("The SDK's public API differs from api/api-signature.txt.\n"
                    + (removed.isEmpty() ? "" : "Removed or changed (breaks existing modules: needs a major version):\n" + removed + "\n")
                    + (added.isEmpty() ? "" : "Added (needs a minor version of the interface it extends):\n" + added + "\n")
                    + "If this is intended, run ./mvnw -pl api test -Dinterlayer.api.updateSignature=true and commit the file.");
        }
    }

    /** One line per public type and per public or protected member, sorted. */
    static List<String> signature() throws IOException, URISyntaxException, ClassNotFoundException {
        Path classes = Path.of(Module.class.getProtectionDomain().getCodeSource().getLocation().toURI()).resolve("dev/interlayer/api");
        List<String> lines = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(classes)) {
            files = s.filter(p -> p.toString().endsWith(".class")).sorted().toList();
        }
        for (Path f : files) {
            String name = "dev.interlayer.api." + f.getFileName().toString().replace(".class", "").replace('$', '.');
            Class<?> c = Class.forName(binaryName(f), false, ApiSignatureTest.class.getClassLoader());
            if (!Modifier.isPublic(c.getModifiers()) || c.isSynthetic() || c.isAnonymousClass()) continue;
            String type = name;
            lines.add(type + " :: " + describeType(c));
            for (Field fl : c.getDeclaredFields()) {
                if (visible(fl.getModifiers()) && !fl.isSynthetic()) {
                    lines.add(type + " :: field " + Modifier.toString(fl.getModifiers()) + " " + fl.getGenericType().getTypeName() + " " + fl.getName());
                }
            }
            for (Constructor<?> k : c.getDeclaredConstructors()) {
                if (visible(k.getModifiers()) && !c.isEnum() && !c.isRecord()) {
                    lines.add(type + " :: " + k.toGenericString());
                }
            }
            for (Method m : c.getDeclaredMethods()) {
                if (visible(m.getModifiers()) && !m.isSynthetic() && !m.isBridge()) {
                    Since s = m.getAnnotation(Since.class);
                    String since = s == null ? "" : " @Since(" + s.type().id() + " " + s.major() + "." + s.minor() + ")";
                    lines.add(type + " :: " + m.toGenericString() + since + (m.isDefault() ? " [default]" : ""));
                }
            }
        }
        lines.sort(String::compareTo);
        return lines;
    }

    private static String binaryName(Path f) {
        return "dev.interlayer.api." + f.getFileName().toString().replace(".class", "");
    }

    private static boolean visible(int mod) {
        return Modifier.isPublic(mod) || Modifier.isProtected(mod);
    }

    private static String describeType(Class<?> c) {
        StringBuilder sb = new StringBuilder(Modifier.toString(c.getModifiers() & ~Modifier.STATIC));
        sb.append(c.isAnnotation() ? " @interface" : c.isRecord() ? " record" : c.isEnum() ? " enum" : c.isInterface() ? "" : " class");
        if (c.getTypeParameters().length > 0) {
            sb.append(" <").append(Arrays.stream(c.getTypeParameters()).map(Object::toString).collect(Collectors.joining(","))).append(">");
        }
        if (c.getGenericSuperclass() != null && c.getSuperclass() != Object.class && !c.isEnum() && !c.isRecord()) {
            sb.append(" extends ").append(c.getGenericSuperclass().getTypeName());
        }
        if (c.getGenericInterfaces().length > 0) {
            sb.append(" implements ").append(Arrays.stream(c.getGenericInterfaces()).map(t -> t.getTypeName()).collect(Collectors.joining(",")));
        }
        if (c.isEnum()) {
            sb.append(" {").append(Arrays.stream(c.getEnumConstants()).map(Object::toString).collect(Collectors.joining(","))).append("}");
        }
        if (c.isRecord()) {
            sb.append(" (").append(Arrays.stream(c.getRecordComponents()).map(RecordComponent::getGenericType).map(t -> t.getTypeName())
                    .collect(Collectors.joining(","))).append(")");
        }
        return sb.toString().trim();
    }
}
