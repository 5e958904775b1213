package dev.interlayer.bench.reliability;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.MethodModel;
import java.lang.classfile.constantpool.StringEntry;
import java.lang.classfile.instruction.ConstantInstruction;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.regex.Pattern;

/**
 * A module jar rebuilt with another version: the version string its {@code descriptor()} methods load
 * ({@code ModuleDescriptor.builder("tag", "1.0.0")}) replaced with the JDK's class-file API, everything else as it
 * was. What an operator gets from rebuilding a module with its version bumped, without a compiler.
 */
final class VersionBump {

    private static final Pattern VERSION = Pattern.compile("\\d{1,9}\\.\\d{1,9}\\.\\d{1,9}");

    private VersionBump() {}

    /** Writes {@code jar} with every module's version set to {@code version} to {@code out}. */
    static Path write(Path jar, String version, Path out) throws IOException {
        int changed = 0;
        try (JarFile in = new JarFile(jar.toFile()); OutputStream os = Files.newOutputStream(out);
             JarOutputStream jos = new JarOutputStream(os)) {
            for (Enumeration<JarEntry> e = in.entries(); e.hasMoreElements(); ) {
                JarEntry entry = e.nextElement();
                byte[] bytes;
                try (InputStream is = in.getInputStream(entry)) {
                    bytes = is.readAllBytes();
                }
                if (entry.getName().endsWith(".class")) {
                    byte[] bumped = bump(bytes, version);
                    changed += bumped == bytes ? 0 : 1;
                    bytes = bumped;
                }
                jos.putNextEntry(new JarEntry(entry.getName()));
                jos.write(bytes);
                jos.closeEntry();
            }
        }
        if (changed == 0) {
            throw new IOException(jar + " has no descriptor() that loads a version string; not a module jar built like the samples");
        }
        return out;
    }

    private static byte[] bump(byte[] bytes, String version) {
        ClassFile cf = ClassFile.of();
        ClassModel model = cf.parse(bytes);
        boolean hasDescriptor = model.methods().stream().anyMatch(VersionBump::isDescriptor);
        if (!hasDescriptor) {
            return bytes;
        }
        return cf.transformClass(model, ClassTransform.transformingMethodBodies(VersionBump::isDescriptor,
                (code, element) -> {
                    if (element instanceof ConstantInstruction.LoadConstantInstruction ldc
                            && ldc.constantEntry() instanceof StringEntry s && VERSION.matcher(s.stringValue()).matches()) {
                        code.ldc(code.constantPool().stringEntry(version));
                    } else {
                        code.with(element);
                    }
                }));
    }

    private static boolean isDescriptor(MethodModel m) {
        return m.methodName().equalsString("descriptor") && m.methodType().stringValue().endsWith("ModuleDescriptor;");
    }
}
