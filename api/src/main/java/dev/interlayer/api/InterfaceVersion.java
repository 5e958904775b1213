package dev.interlayer.api;

/**
 * An interface and the {@code major.minor} version a module was built against.
 *
 * @param type the interface
 * @param major its major version (incompatible changes)
 * @param minor its minor version (optional hooks added)
 */
public record InterfaceVersion(InterfaceType type, int major, int minor) {

    /** Checks the numbers are not negative. */
    public InterfaceVersion {
        if (type == null) {
            throw new IllegalArgumentException("interface type is required");
        }
        if (major < 0 || minor < 0) {
            throw new IllegalArgumentException("version numbers must not be negative: " + major + "." + minor);
        }
    }

    @Override
    public String toString() {
        return type.id() + " " + major + "." + minor;
    }
}
