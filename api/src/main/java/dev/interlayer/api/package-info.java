/**
 * The Interlayer SDK: everything a module author writes against, and nothing else.
 *
 * <p>A module is a class implementing {@link dev.interlayer.api.Module} plus one or more interface
 * types ({@link dev.interlayer.api.StreamModule} for TCP bytes, {@link dev.interlayer.api.DatagramModule}
 * for UDP datagrams, {@link dev.interlayer.api.SocketModule}
 * for out-of-band socket operations), listed in {@code META-INF/services/dev.interlayer.api.Module}
 * of its jar. The agent loads the jar in its own class loader, negotiates interface versions against
 * the module's {@link dev.interlayer.api.ModuleDescriptor}, and attaches the module to the
 * connections its {@link dev.interlayer.api.Selector} matches.
 *
 * <p>Rules that hold everywhere in this package:
 * <ul>
 *   <li>The engine owns every buffer. A {@link dev.interlayer.api.ByteView} is lent for the length of
 *       one call; keeping bytes needs an explicit copy or {@link dev.interlayer.api.StreamContext#hold()}.
 *   <li>Every method that transfers ownership says so in the first sentence of its javadoc.
 *   <li>Calls for one connection never overlap: they run on that connection's event-loop thread.
 *       Methods that may be called from any thread say so.
 *   <li>Exceptions thrown by a hook are caught by the engine, counted against the module and
 *       handled by its {@link dev.interlayer.api.FaultPolicy}.
 * </ul>
 */
package dev.interlayer.api;
