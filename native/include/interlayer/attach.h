/*
 * Interlayer programmatic attach: ask the local agent to attach a module to the connections this process opens
 * from now on (docs/interception.md, "Programmatic attach"). Link with -linterlayer-attach, or preload the library
 * with INTERLAYER_ATTACH=module[,module...] set (nothing to link: it asks when the process starts).
 *
 * The agent knows who asks from the kernel (SO_PEERCRED on its attach socket): a process can only ask for itself,
 * and the agent's control policy decides whether it may. A registration lasts until interlayer_detach(), until
 * this process exits, or until the connections it was given are used up. Every function is thread-safe.
 *
 * The attach socket: $INTERLAYER_ATTACH_SOCKET; else $INTERLAYER_SOCKET with ".sock" replaced by "-attach.sock";
 * else for root /run/interlayer/control-attach.sock, for other users $XDG_RUNTIME_DIR/interlayer/control-attach.sock
 * or /tmp/interlayer-UID/control-attach.sock.
 */
#ifndef INTERLAYER_ATTACH_H
#define INTERLAYER_ATTACH_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Attaches `module` ("tag", or "tag@1.0.0" for a version it must be loaded at) to the connections this process
 * opens from now on. Returns the registration's id (> 0), or -1 when the agent cannot be reached or refused:
 * interlayer_attach_error() then says why.
 */
long interlayer_attach(const char *module);

/* Ends registration `id`. Returns 0, or -1 (interlayer_attach_error() says why). */
int interlayer_detach(long id);

/* Why the last failed call of this thread failed, as the agent or the system said it. */
const char *interlayer_attach_error(void);

#ifdef __cplusplus
}
#endif

#endif
