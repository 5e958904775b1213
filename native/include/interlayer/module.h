/*
 * interlayer/module.h - the C ABI of Interlayer modules (the only C API; checked against
 * native/module-h-signature.txt on every build).
 *
 * A C package is a shared object (.so) the agent maps with the JDK's foreign function API, exactly where
 * it loads jars: the modules folder, a config entry's `jar:`, `interlayer modules load`. One object may hold
 * several modules, each implementing one or more interfaces.
 *
 *   what the object exports                       when the host calls it
 *   ------------------------------------------    ---------------------------------------------------
 *   interlayer_plugin_get_version()     required  first: the ABI version of this header it was built with
 *   interlayer_module_list(&count)      required  next: the modules it holds (name, version, interfaces, params)
 *   interlayer_plugin_init(host)        required  once, before any module's init; receives the host services
 *   <interface>_<module>_initvt(...)    required  once per module and interface it declares: fills the vtable
 *   interlayer_plugin_fini()            required  once, after the last call into any of its modules returned
 *
 * In symbol names a module's '-' becomes '_' (module "dns-tag", interface "stream": stream_dns_tag_initvt).
 *
 * Versions: every interface has a major.minor. A module declares the version it was built against in its
 * il_module_info (e.g. "stream 1.1"). The host refuses a module whose major differs from its own, or whose
 * minor is higher than its own. It calls initvt(ctx, host_major, host_minor, vtable) with a zeroed vtable of
 * the host's size; initvt returns IL_ERR_VERSION for a major it does not know, else fills the entries of
 * the minors it knows and sets vtable->minor. The host never calls an entry added after that minor, and an
 * entry left NULL costs nothing: the host's default runs (PASS, allow, ...), detected once at load.
 *
 * Threading: a connection's hooks (attach, detach, on_send, ...) run on that connection's event-loop
 * thread, one at a time, and must not block. Module-wide calls (init, fini, control, on_listen, timers
 * without a connection) may run on any thread. Host services marked "any thread" may be called from any
 * thread, including threads the module started; all others only from inside the hook call they belong to.
 *
 * Ownership, in one rule: the host owns every pointer it passes in; the module owns every pointer it
 * passes out (strings in il_module_info, its own state). What the host passes in is valid for the call
 * only, unless its documentation below says longer. Nothing here is ever freed by the other side.
 *
 * Containment: a module runs inside the agent's process. A crash or a stray write in it takes the agent
 * down; the host can count what a hook returns and how long it takes, but cannot stop native code that
 * never returns.
 */
#ifndef INTERLAYER_MODULE_H
#define INTERLAYER_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version of this header: the entry points above, il_module_info and il_host. */
#define IL_ABI_VERSION 1

/* Interface versions this header describes. */
#define IL_STREAM_MAJOR 1
#define IL_STREAM_MINOR 2   /* 1.0 on_send, on_recv; 1.1 on_end; 1.2 host->rewrite */
#define IL_DATAGRAM_MAJOR 1
#define IL_DATAGRAM_MINOR 1 /* 1.0 on_send, on_recv; 1.1 host->rewrite */
#define IL_SOCKET_MAJOR 1
#define IL_SOCKET_MINOR 0   /* 1.0 every hook of il_socket_vtable */
/* tls: not yet part of the C ABI (its steps are still growing); a module declaring "tls" is refused. */

/* ---- status codes ------------------------------------------------------------------------------- */

/* What entry points return, and what a hook returns instead of a verdict when it failed (any value < 0).
 * A hook's failure is a fault: handled by the module's fault policy (fail-open detaches the module from
 * the connection, fail-closed resets it) and counted towards quarantine. Set a message first with
 * host->set_error; it appears in the module's log and in `interlayer modules show`. */
#define IL_OK 0
#define IL_ERR_VERSION (-1)  /* initvt: this major is not supported */
#define IL_ERR_FAILED (-2)   /* generic failure */
#define IL_ERR_NOMEM (-3)    /* out of memory */
#define IL_ERR_INVALID (-4)  /* a bad parameter or input */

/* ---- verdicts ------------------------------------------------------------------------------------- */

/* What a data hook returns (one per call). The meaning is that of the Java SDK's Verdict. */
#define IL_PASS 0       /* forward the chunk, or the replacement written with host->emit/host->write */
#define IL_DROP 1       /* discard the chunk; the sender is not told */
#define IL_HOLD 2       /* the module took the chunk with host->hold and may inject it later */
#define IL_DETACH 3     /* as PASS, then never call this module on this connection again */
#define IL_CLOSE 4      /* discard the chunk, flush what was forwarded, close gracefully (stream only) */
#define IL_NEED_MORE 5  /* return host->need_more(call, n): call again once n bytes are buffered (stream only) */
#define IL_ABORT 6      /* return host->abort_with(call, code, reason): reset the connection, record the reason */

/* What a socket decision hook returns. */
#define IL_ALLOW 0      /* let the operation proceed */
#define IL_DENY 1       /* return host->deny(call, reason): refuse it */
#define IL_REDIRECT 2   /* return host->redirect(call, addr): connect / bind to another address */
#define IL_MODIFY 3     /* on_set_option: return host->modify(call, value) to set another value */

/* Directions, sides, options, events (the Java SDK's enums, same order). */
#define IL_SEND 0  /* from the local application toward the network */
#define IL_RECV 1  /* from the network toward the local application */
#define IL_SIDE_LOCAL 0
#define IL_SIDE_REMOTE 1
enum il_option { IL_TCP_NODELAY, IL_SO_KEEPALIVE, IL_SO_RCVBUF, IL_SO_SNDBUF, IL_IP_TOS, IL_SO_LINGER };
enum il_event { IL_CONNECTED, IL_SEND_SHUTDOWN, IL_RECV_SHUTDOWN, IL_CLOSING, IL_SEND_WRITABLE, IL_SEND_UNWRITABLE,
                IL_RECV_WRITABLE, IL_RECV_UNWRITABLE };

/* ---- handles ---------------------------------------------------------------------------------------- */

/* Opaque handles the host passes in; the module never dereferences or frees them.
 *   il_ctx   a module: from initvt/init until fini. Used for logging, parameters and init's errors.
 *   il_conn  one attachment of a module to a connection: from attach until detach returns.
 *            Keep it in the connection state to inject or set timers later; after detach every
 *            service taking it does nothing and returns 0/IL_ERR_FAILED.
 *   il_call  one hook call: valid until that hook returns, on that thread only.
 *   il_held  bytes taken with host->hold: the module's until it injects or releases them. */
typedef struct il_ctx il_ctx;
typedef struct il_conn il_conn;
typedef struct il_call il_call;
typedef struct il_held il_held;

/* An IPv4 or IPv6 socket address. family is 4 or 6; an IPv4 address uses ip[0..3]. */
typedef struct il_addr {
    uint16_t family;
    uint16_t port;
    uint8_t ip[16];
} il_addr;

/* ---- host services --------------------------------------------------------------------------------- */

typedef void (*il_timer_fn)(void *module, void *arg);

/* The engine's services, passed once to interlayer_plugin_init. The table and every function in it stay
 * valid until interlayer_plugin_fini returns. New services are only ever added at the end; `size` says how
 * many the host has (compare with offsetof before calling one added later). */
typedef struct il_host {
    uint32_t size;                        /* sizeof(il_host) of the host */
    uint32_t abi_version;                 /* IL_ABI_VERSION of the host */

    /* -- logging and errors (any thread) -- */
    /* Logs `message` (copied) with the module's name and version; code 0 is informational, else an error. */
    void (*log)(il_ctx *ctx, int code, const char *message);
    /* Records why the current init or hook failed (copied); return a negative status right after. */
    void (*set_error)(il_ctx *ctx, int code, const char *message);

    /* -- parameters (init only; values are checked against the declared types before init) -- */
    int64_t (*param_int)(il_ctx *ctx, const char *name);  /* int, long, size (bytes), duration (ns), bool (0/1) */
    /* A string parameter as UTF-8 with a trailing NUL, owned by the host, valid until fini; NULL if not declared. */
    const char *(*param_string)(il_ctx *ctx, const char *name, size_t *len);

    /* -- the current data-hook call (the hook's thread, during the call) -- */
    /* Appends len bytes to this call's replacement and returns where to write them; the memory is the
     * engine's and is valid until the next emit/write or the end of the call. NULL if the connection's hold
     * limit would be exceeded. With IL_PASS the replacement is forwarded instead of the chunk. */
    uint8_t *(*emit)(il_call *call, size_t len);
    /* emit + copy: appends len bytes of src (the module's) to the replacement. Returns IL_OK or a status. */
    int (*write)(il_call *call, const void *src, size_t len);
    /* The chunk's own bytes, writable, to change them in place without changing their number (stream 1.2,
     * datagram 1.1 semantics: a fault after it resets/drops whatever the fault policy). Valid during the call. */
    uint8_t *(*rewrite)(il_call *call);
    /* Takes the whole chunk out of the stream (return IL_HOLD). NULL if over the hold limit. */
    il_held *(*hold)(il_call *call);
    int (*need_more)(il_call *call, uint32_t bytes);                   /* returns IL_NEED_MORE */
    int (*abort_with)(il_call *call, int code, const char *reason);    /* returns IL_ABORT; reason copied */
    /* 1 if the chunk was injected by a module earlier in the chain; then *tag gets its tag. */
    int (*injected)(il_call *call, uint64_t *tag);

    /* -- socket decisions (the hook's thread, during the call) -- */
    int (*deny)(il_call *call, const char *reason);                    /* returns IL_DENY */
    int (*redirect)(il_call *call, const il_addr *addr);               /* returns IL_REDIRECT */
    int (*modify)(il_call *call, int64_t value);                       /* returns IL_MODIFY */
    /* control: the reply's bytes (copied). Return IL_OK for success, IL_ERR_FAILED for an error reply. */
    void (*reply)(il_call *call, const void *body, size_t len);

    /* -- the connection (any thread, until detach; 0/IL_ERR_FAILED after it) -- */
    /* Sends a copy of len bytes in `direction`, entering the chain after this module, with `tag`. */
    int (*inject)(il_conn *conn, int direction, const void *bytes, size_t len, uint64_t tag);
    int (*inject_held)(il_conn *conn, int direction, il_held *held);   /* ownership back to the engine */
    void (*release_held)(il_held *held);                               /* gives held bytes back unsent */
    size_t (*held_length)(il_held *held);
    /* Runs fn(module, arg) on the connection's event loop after delay_ns; cancelled at detach. Returns a
     * timer id (> 0) for cancel_timer, or 0 if the connection is gone. `arg` stays the module's. */
    uint64_t (*schedule)(il_conn *conn, uint64_t delay_ns, il_timer_fn fn, void *arg);
    int (*cancel_timer)(uint64_t timer);
    int (*is_writable)(il_conn *conn, int direction);
    void (*close)(il_conn *conn);                                      /* graceful close after flushing */
    void (*abort)(il_conn *conn, const char *reason);                  /* reset; reason copied */
    /* What is known about the connection; connection_id is the agent's id of it; addresses fills *local and *remote (the module's memory). */
    uint64_t (*connection_id)(il_conn *conn);
    int (*addresses)(il_conn *conn, il_addr *local, il_addr *remote);
} il_host;

/* ---- module description ---------------------------------------------------------------------------- */

/* One declared parameter. type: "int", "long", "bool", "string", "size", "duration". default_value is the
 * text a config would write ("1000", "64KiB", "250ms", "true"); NULL means required. */
typedef struct il_param {
    const char *name;
    const char *type;
    const char *default_value;
    const char *description;
} il_param;

/* Module-wide hooks, all optional (NULL = the default).
 *   init:   runs once before any attach; *module is passed to every later call (the module's). Return IL_OK, or
 *           set_error + a negative status to refuse loading (the module goes FAILED with that message).
 *   fini:   once, after the last call into the module returned; free what init allocated.
 *   attach: binds to a new connection; *state is passed to that connection's hooks. Return IL_OK, 1 to
 *           decline (stay off this connection), or a negative status (a fault).
 *   detach: exactly once per successful attach; free *state here. `reason`: 0 closed, 1 IL_DETACH verdict,
 *           2 unregistered, 3 revoked, 4 requested (control plane), 5 fault. */
typedef struct il_module_info {
    uint32_t size;              /* sizeof(il_module_info) the object was built with */
    const char *name;           /* lower-kebab-case, as a jar module's */
    const char *version;        /* MAJOR.MINOR.PATCH */
    const char *description;
    const char *interfaces;     /* what it implements and the version built against: "stream 1.1, socket 1.0" */
    int32_t priority;           /* default priority (lower attaches first) */
    const il_param *params;
    uint32_t param_count;
    int (*init)(il_ctx *ctx, void **module);
    void (*fini)(void *module);
    int (*attach)(void *module, il_conn *conn, void **state);
    void (*detach)(void *module, void *state, int reason);
} il_module_info;

/* ---- stream ---------------------------------------------------------------------------------------- */

/* A data hook: the chunk is len bytes at data, the engine's memory, read-only, valid during the call only
 * (copy what you keep, or hold the chunk). Returns a verdict (>= 0) or a negative status (a fault). */
typedef int (*il_data_hook)(void *module, void *state, il_call *call, const uint8_t *data, size_t len);

typedef struct il_stream_vtable {
    uint32_t minor;             /* set by initvt: the stream minor the module was built for */
    uint32_t reserved;
    /* 1.0 */
    il_data_hook on_send;
    il_data_hook on_recv;
    /* 1.1: the sender half-closed in the call's direction; `data` is what an earlier NEED_MORE left buffered. */
    il_data_hook on_end;
} il_stream_vtable;

/* ---- datagram ------------------------------------------------------------------------------------- */

/* One whole datagram per call; IL_NEED_MORE and IL_CLOSE are faults here. */
typedef struct il_datagram_vtable {
    uint32_t minor;
    uint32_t reserved;
    /* 1.0 */
    il_data_hook on_send;
    il_data_hook on_recv;
} il_datagram_vtable;

/* ---- socket --------------------------------------------------------------------------------------- */

typedef struct il_socket_vtable {
    uint32_t minor;
    uint32_t reserved;
    /* 1.0 */
    int (*on_connect)(void *module, void *state, il_conn *conn, il_call *call, const il_addr *target);
    int (*on_bind)(void *module, void *state, il_conn *conn, il_call *call, const il_addr *local /* NULL: ephemeral */);
    int (*on_listen)(void *module, il_call *call, const char *listener, const il_addr *listen);
    int (*on_set_option)(void *module, void *state, il_conn *conn, il_call *call, int side, int option, int64_t value);
    /* Returns the value to report (usually `value`). */
    int64_t (*on_get_option)(void *module, void *state, il_conn *conn, int side, int option, int64_t value);
    /* A module-specific request: command (NUL-terminated) and body are the host's, valid during the call.
     * Answer with host->reply; return IL_OK, or IL_ERR_FAILED for an error answer. Any thread. */
    int (*control)(void *module, il_call *call, const char *command, const uint8_t *body, size_t len);
    void (*on_event)(void *module, void *state, il_conn *conn, int event);
} il_socket_vtable;

/* ---- tls -------------------------------------------------------------------------------------------- */
/* Reserved: the tls interface is not in the C ABI yet. Its vtable will be il_tls_vtable, filled by
 * tls_<module>_initvt; until then a C module must not declare "tls". */

/* ---- entry points ----------------------------------------------------------------------------------- */

typedef int (*il_initvt_fn)(il_ctx *ctx, int major, int minor, void *vtable);

uint32_t interlayer_plugin_get_version(void);
const il_module_info *interlayer_module_list(uint32_t *count);
int interlayer_plugin_init(const il_host *host);
void interlayer_plugin_fini(void);

#ifdef __cplusplus
}
#endif

#endif /* INTERLAYER_MODULE_H */
