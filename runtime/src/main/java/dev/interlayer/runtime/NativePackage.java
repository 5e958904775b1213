package dev.interlayer.runtime;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Param;
import dev.interlayer.api.ParamType;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A C package ({@code .so}) loaded by {@link ModuleRegistry#loadNative}: its cached copy mapped in its own shared
 * {@link Arena}, and the modules it lists.
 *
 * <p>Lifecycle, the same as a {@link JarPackage}'s: the registry creates it holding one "loading" reference and adds one
 * per module before that module is added; a module's unload (after its fini, when its last connection has ended)
 * releases its reference. The last release calls {@code interlayer_plugin_fini} and closes the arena, which unmaps the
 * object ({@code dlclose}); then the cached copy is deleted. So replacing a {@code .so} maps the new content beside the old
 * one (the cache names each copy by its SHA-256), and the old one is unmapped when its last connection ends.
 *
 * <p>Thread-safe: releases may come from any thread.
 */
public final class NativePackage extends CachedPackage {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");
    static final String GET_VERSION = "interlayer_plugin_get_version";
    static final String MODULE_LIST = "interlayer_module_list";
    static final String PLUGIN_INIT = "interlayer_plugin_init";
    static final String PLUGIN_FINI = "interlayer_plugin_fini";

    /** One module the object lists: the adapter that wraps it, or why it cannot be loaded. */
    record Entry(String name, NativeModule module, String problem) {}

    private final ModuleRegistry registry;
    private final Arena arena;
    private final MemorySegment fini;
    private final List<Entry> entries;
    private final List<String> exports;
    private final List<String> initvts = new ArrayList<>();

    private NativePackage(ModuleRegistry registry, String location, String sha256, Path cachedCopy, Arena arena, MemorySegment fini,
                          List<String> exports, List<Entry> entries) {
        super(location, sha256, cachedCopy);
        this.registry = registry;
        this.arena = arena;
        this.fini = fini;
        this.exports = exports;
        this.entries = entries;
    }

    /** Thrown by {@link #open} when the object cannot be used at all; the message says what is wrong and what to do. */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    /**
     * Maps {@code cached} (the copy of {@code location}), checks its entry points, reads its module list, calls
     * {@code interlayer_plugin_init} and every module's initvt.
     *
     * @throws Refused if the object cannot be mapped, lacks an entry point, has another ABI version or refuses init
     */
    static NativePackage open(ModuleRegistry registry, String location, String sha256, Path cached) throws Refused {
        String what = "C module object " + location;
        String dl = NativeAbi.probe(cached.toString());
        if (dl != null) {
            throw new Refused(explainDlopen(what, dl.replace(cached.toString(), location)));
        }
        Arena arena = Arena.ofShared();
        boolean ok = false;
        try {
            SymbolLookup lib = SymbolLookup.libraryLookup(cached, arena);
            List<String> missing = new ArrayList<>();
            List<String> exports = new ArrayList<>();
            MemorySegment[] required = new MemorySegment[4];
            String[] names = {GET_VERSION, MODULE_LIST, PLUGIN_INIT, PLUGIN_FINI};
            for (int i = 0; i < names.length; i++) {
                Optional<MemorySegment> s = lib.find(names[i]);
                if (s.isEmpty()) {
                    missing.add(names[i]);
                } else {
                    required[i] = s.get();
                    exports.add(names[i]);
                }
            }
            if (!missing.isEmpty()) {
                throw new Refused(what + " does not export " + String.join(", ", missing) + ": it is not an Interlayer C module, or was"
                        + " built without them. Include <interlayer/module.h>, define every required entry point (see the module guide's"
                        + " \"C modules\"), and check with `nm -D --defined-only` that they are exported (not static, no"
                        + " -fvisibility=hidden without a visibility attribute)");
            }
            int abi = (int) NativeAbi.GET_VERSION.invokeExact(required[0]);
            if (abi != NativeAbi.ABI_VERSION) {
                throw new Refused(what + " was built with module.h ABI version " + abi + " but this agent speaks version "
                        + NativeAbi.ABI_VERSION + "; rebuild it against this agent's native/include/interlayer/module.h");
            }
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            long list = (long) NativeAbi.MODULE_LIST.invokeExact(required[1], count.address());
            int n = count.get(ValueLayout.JAVA_INT, 0);
            if (list == 0 || n <= 0 || n > 1024) {
                throw new Refused(what + ": " + MODULE_LIST + " returned " + (list == 0 ? "NULL" : n + " modules")
                        + "; return a static array of il_module_info and set *count to its length (1 to 1024)");
            }
            int rc = (int) NativeAbi.PLUGIN_INIT.invokeExact(required[2], NativeAbi.HOST.address());
            if (rc != NativeAbi.IL_OK) {
                throw new Refused(what + ": " + PLUGIN_INIT + " returned " + NativeModule.status(rc)
                        + "; the object refused to start (see its log lines above)");
            }
            NativePackage pkg = new NativePackage(registry, location, sha256, cached, arena, required[3], List.copyOf(exports), new ArrayList<>());
            long infoSize = NativeAbi.MODULE_INFO.byteSize();
            MemorySegment infos = NativeAbi.at(list, infoSize * n);
            for (int i = 0; i < n; i++) {
                pkg.entries.add(pkg.entry(lib, infos.asSlice(i * infoSize, infoSize), i));
            }
            ok = true;
            return pkg;
        } catch (Refused e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new Refused(what + " cannot be mapped: " + e.getMessage() + "; rebuild it with gcc -shared -fPIC");
        } catch (Throwable t) {
            throw new Refused(what + " failed while it was being loaded: " + t + "; check it with interlayer check-module");
        } finally {
            if (!ok) {
                arena.close();
            }
        }
    }

    /** dlopen's error, with what it means and the fix. */
    static String explainDlopen(String what, String error) {
        String e = error;
        int undefined = e.indexOf("undefined symbol: ");
        if (undefined >= 0) {
            String symbol = e.substring(undefined + "undefined symbol: ".length()).strip();
            int comma = symbol.indexOf(',');
            symbol = comma > 0 ? symbol.substring(0, comma) : symbol;
            return what + " needs the symbol '" + symbol + "', which neither it nor any library it links defines (dlopen: " + e
                    + "); define it, or link the library that does (add -l<lib> to the gcc command), then rebuild";
        }
        if (e.contains("invalid ELF header") || e.contains("file too short") || e.contains("not an ELF")) {
            return what + " is not a shared object (dlopen: " + e + "); build it with gcc -shared -fPIC -o name.so name.c, and if it is"
                    + " still being copied, copy it under a name starting with a dot and rename it into place";
        }
        if (e.contains("wrong ELF class") || e.contains("ELF file") && e.contains("machine")) {
            return what + " is built for another machine (dlopen: " + e + "); build it for this one (x86-64/aarch64 Linux)";
        }
        if (e.contains("cannot open shared object file")) {
            return what + " needs a library that is not installed (dlopen: " + e + "); install it or link it statically";
        }
        return what + " cannot be loaded (dlopen: " + e + "); check it with interlayer check-module";
    }

    /** Reads module {@code index}'s il_module_info and fills its vtables. */
    private Entry entry(SymbolLookup lib, MemorySegment info, int index) {
        String name = null;
        try {
            int size = info.get(ValueLayout.JAVA_INT, 0);
            if (size < NativeAbi.MODULE_INFO.byteSize()) {
                return new Entry("#" + index, null, "il_module_info #" + index + " has size " + size + ", expected at least "
                        + NativeAbi.MODULE_INFO.byteSize() + "; set .size = sizeof(il_module_info)");
            }
            name = field(info, "name");
            if (name == null) {
                return new Entry("#" + index, null, "il_module_info #" + index + " has no name; set .name");
            }
            String version = field(info, "version");
            String interfaces = field(info, "interfaces");
            ModuleDescriptor.Builder b = ModuleDescriptor.builder(name, version == null ? "" : version)
                    .priority(info.get(ValueLayout.JAVA_INT, NativeAbi.offset(NativeAbi.MODULE_INFO, "priority")));
            String description = field(info, "description");
            if (description != null) {
                b.description(description);
            }
            Map<InterfaceType, int[]> declared = interfaces(name, interfaces);
            for (Map.Entry<InterfaceType, int[]> e : declared.entrySet()) {
                InterfaceType t = e.getKey();
                int major = e.getValue()[0];
                int minor = e.getValue()[1];
                if (major != t.hostMajor()) {
                    return new Entry(name, null, "module " + name + " " + version + " was built against " + t.id() + " " + major + "." + minor
                            + " but this agent offers " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                            + ": the major version must match; rebuild it against this agent's module.h and declare \"" + t.id() + " "
                            + t.hostMajor() + "." + Math.min(minor, t.hostMinor()) + "\"");
                }
                b.implement(t, major, minor);
            }
            long paramsAt = info.get(ValueLayout.JAVA_LONG, NativeAbi.offset(NativeAbi.MODULE_INFO, "params"));
            int paramCount = info.get(ValueLayout.JAVA_INT, NativeAbi.offset(NativeAbi.MODULE_INFO, "param_count"));
            if (paramCount > 0) {
                long ps = NativeAbi.PARAM.byteSize();
                MemorySegment params = NativeAbi.at(paramsAt, ps * paramCount);
                for (int i = 0; i < paramCount; i++) {
                    b.param(param(name, params.asSlice(i * ps, ps)));
                }
            }
            ModuleDescriptor d = b.build();
            return new Entry(name, vtables(lib, info, d), null);
        } catch (RuntimeException e) {
            return new Entry(name == null ? "#" + index : name, null, (name == null ? "il_module_info #" + index : "module " + name)
                    + ": " + e.getMessage());
        }
    }

    private static String field(MemorySegment info, String field) {
        return NativeAbi.string(info.get(ValueLayout.JAVA_LONG, NativeAbi.offset(NativeAbi.MODULE_INFO, field)));
    }

    private static MemorySegment pointer(MemorySegment s, long offset) {
        return MemorySegment.ofAddress(s.get(ValueLayout.JAVA_LONG, offset));
    }

    /** Parses "stream 1.1, socket 1.0". */
    static Map<InterfaceType, int[]> interfaces(String module, String text) {
        Map<InterfaceType, int[]> out = new LinkedHashMap<>();
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("declares no interface; set .interfaces, e.g. \"stream 1.1\"");
        }
        for (String part : text.split(",")) {
            String[] w = part.strip().split("\\s+");
            String[] v = w.length == 2 ? w[1].split("\\.") : new String[0];
            if (v.length != 2) {
                throw new IllegalArgumentException("interfaces \"" + text + "\": '" + part.strip() + "' is not '<interface> <major>.<minor>';"
                        + " write e.g. \"stream 1.1, socket 1.0\"");
            }
            InterfaceType t = InterfaceType.byId(w[0]);
            out.put(t, new int[] {Integer.parseInt(v[0]), Integer.parseInt(v[1])});
        }
        return out;
    }

    private static Param param(String module, MemorySegment p) {
        String name = NativeAbi.string(p.get(ValueLayout.JAVA_LONG, 0));
        String type = NativeAbi.string(p.get(ValueLayout.JAVA_LONG, 8));
        String def = NativeAbi.string(p.get(ValueLayout.JAVA_LONG, 16));
        String desc = NativeAbi.string(p.get(ValueLayout.JAVA_LONG, 24));
        ParamType t;
        try {
            t = ParamType.valueOf(String.valueOf(type).toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("parameter '" + name + "' has type '" + type + "'; use int, long, bool, string, size or duration");
        }
        Param untyped = new Param(name, t, null, desc);
        return def == null ? untyped : new Param(name, t, ParamValues.convert(untyped, def), desc);
    }

    private record Slot(InterfaceType type, int minor, int bit, String name) {}

    /** Every vtable entry by interface: (since minor, hook bit, C name), in vtable order. */
    private static final List<Slot> SLOTS = List.of(
            new Slot(InterfaceType.STREAM, 0, Hooks.SEND, "on_send"),
            new Slot(InterfaceType.STREAM, 0, Hooks.RECV, "on_recv"),
            new Slot(InterfaceType.STREAM, 1, Hooks.END, "on_end"),
            new Slot(InterfaceType.DATAGRAM, 0, Hooks.DATAGRAM_SEND, "on_send"),
            new Slot(InterfaceType.DATAGRAM, 0, Hooks.DATAGRAM_RECV, "on_recv"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.CONNECT, "on_connect"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.BIND, "on_bind"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.LISTEN, "on_listen"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.SET_OPTION, "on_set_option"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.GET_OPTION, "on_get_option"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.CONTROL, "control"),
            new Slot(InterfaceType.SOCKET, 0, Hooks.EVENT, "on_event"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_SELECT_CERTIFICATE, "select_certificate"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_VERIFY_PEER, "verify_peer"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_SELECT_ALPN, "select_alpn"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_CONFIGURE, "configure"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_HANDSHAKE_COMPLETED, "handshake_completed"),
            new Slot(InterfaceType.TLS, 0, Hooks.TLS_HANDSHAKE_FAILED, "handshake_failed"),
            new Slot(InterfaceType.TLS, 1, Hooks.TLS_TICKET_KEYS, "session_ticket_keys"),
            new Slot(InterfaceType.TLS, 1, Hooks.TLS_KEY_LOG, "key_log"));

    /** The symbol of a module's initvt for {@code type}: a '-' in the name becomes '_'. */
    static String initvt(InterfaceType type, String module) {
        return type.id() + "_" + module.replace('-', '_') + "_initvt";
    }

    private NativeModule vtables(SymbolLookup lib, MemorySegment info, ModuleDescriptor d) {
        MemorySegment[] hook = new MemorySegment[SLOTS.size()];
        java.util.Arrays.fill(hook, MemorySegment.NULL);
        int bits = 0;
        List<String> notes = new ArrayList<>();
        long ctx = NativeAbi.nextHandle();
        for (var e : d.interfaces().entrySet()) {
            InterfaceType t = e.getKey();
            int declaredMinor = e.getValue().minor();
            if (declaredMinor > t.hostMinor()) {
                throw new IllegalArgumentException("was built against " + t.id() + " " + e.getValue().major() + "." + declaredMinor
                        + " but this agent offers " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                        + ": the module may call what this agent lacks; upgrade the agent, or build against this agent's module.h");
            }
            String symbol = initvt(t, d.name());
            Optional<MemorySegment> found = lib.find(symbol);
            found.ifPresent(x -> initvts.add(symbol));
            MemorySegment fn = found.orElseThrow(() -> new IllegalArgumentException("declares " + t.id()
                    + " but the object does not export " + symbol + "; define int " + symbol + "(il_ctx *, int, int, void *)"));
            List<Slot> slots = SLOTS.stream().filter(s -> s.type == t).toList();
            MemorySegment vt = arena.allocate(NativeAbi.VT_HEADER + 8L * slots.size(), 8);
            int rc;
            try {
                rc = (int) NativeAbi.INITVT.invokeExact(fn, ctx, t.hostMajor(), t.hostMinor(), vt.address());
            } catch (Throwable x) {
                throw new IllegalStateException(symbol + " could not be called: " + x);
            }
            if (rc == NativeAbi.IL_ERR_VERSION) {
                throw new IllegalArgumentException(symbol + " refused " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                        + " (IL_ERR_VERSION): the module does not support this agent's major version; rebuild it against this agent's module.h");
            }
            if (rc != NativeAbi.IL_OK) {
                throw new IllegalArgumentException(symbol + " returned " + NativeModule.status(rc) + "; return IL_OK after filling the vtable");
            }
            int vtMinor = vt.get(ValueLayout.JAVA_INT, 0);
            int minor = Math.min(declaredMinor, vtMinor);
            if (vtMinor != declaredMinor) {
                notes.add(t.id() + " vtable says minor " + vtMinor + " but il_module_info declares " + t.id() + " " + e.getValue().major() + "."
                        + declaredMinor + ": using " + minor);
            }
            for (int i = 0; i < slots.size(); i++) {
                Slot s = slots.get(i);
                MemorySegment p = pointer(vt, NativeAbi.VT_HEADER + 8L * i);
                if (p.address() == 0) {
                    continue;
                }
                if (s.minor > minor) {
                    notes.add((t == InterfaceType.DATAGRAM ? "datagram " : "") + s.name + " needs " + t.id() + " " + t.hostMajor() + "." + s.minor
                            + " but the module declares " + t.id() + " " + e.getValue().major() + "." + minor + ": it will not be called");
                    continue;
                }
                hook[SLOTS.indexOf(s)] = p;
                bits |= s.bit;
            }
        }
        long o = NativeAbi.offset(NativeAbi.MODULE_INFO, "init");
        MemorySegment init = pointer(info, o), fini = pointer(info, o + 8), attach = pointer(info, o + 16), detach = pointer(info, o + 24);
        // attach and detach always run, C functions or not: they make the handle C knows the connection by
        bits |= Hooks.ATTACH | Hooks.DETACH;
        NativeModule.Functions f = new NativeModule.Functions(init, fini, attach, detach, hook[0], hook[1], hook[2], hook[3], hook[4],
                hook[5], hook[6], hook[7], hook[8], hook[9], hook[10], hook[11], java.util.Arrays.copyOfRange(hook, 12, 20));
        return new NativeModule(d, this, f, new Hooks.Detected(bits, List.copyOf(notes)), ctx);
    }

    /** The modules the object lists, with the adapter of each or why it cannot be loaded. */
    List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** The initvt functions of the modules the object lists that it exports, in list order. */
    public List<String> initvts() {
        return List.copyOf(initvts);
    }

    /** The entry points the object exports (of those the host looks for). */
    public List<String> exports() {
        return exports;
    }

    /** C modules have no class loader: calls into them run with the host's. */
    @Override
    public ClassLoader loader() {
        return NativePackage.class.getClassLoader();
    }

    @Override
    void close() {
        for (Entry e : entries) {
            if (e.module != null) {
                e.module.forget(); // modules that never loaded: their handles go too
            }
        }
        try {
            NativeAbi.PLUGIN_FINI.invokeExact(fini);
        } catch (Throwable t) {
            LOG.log(Level.WARNING, "{0} of {1} failed: {2}", PLUGIN_FINI, location(), t.toString());
        }
        arena.close();
        registry.packageClosed(this);
    }

    @Override
    public String toString() {
        return "C object " + location() + " (sha256 " + sha256() + ")";
    }
}
