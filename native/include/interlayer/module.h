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
#define IL_STREAM_MINOR 2   /* 1.0 on_send, on_recv; 1.1 on_end; 1.2 host->rewrite (1.3 added only a Java descriptor flag) */
#define IL_DATAGRAM_MAJOR 1
#define IL_DATAGRAM_MINOR 1 /* 1.0 on_send, on_recv; 1.1 host->rewrite */
#define IL_SOCKET_MAJOR 1
#define IL_SOCKET_MINOR 0   /* 1.0 every hook of il_socket_vtable */
#define IL_TLS_MAJOR 1
#define IL_TLS_MINOR 1      /* 1.0 select_certificate .. handshake_failed; 1.1 session_ticket_keys, key_log */

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

/* The steps of the TLS handshakes the agent terminates (a listener's tls: block) or originates (its upstream's), as the
 * Java SDK's TlsModule: a listener names one tls module per block (module: NAME). Every entry is optional: NULL keeps
 * the agent's own step, at no cost. Each step the module fills is handed the agent's own steps (il_tls_functions), so
 * an override can delegate: return defaults->select_certificate(call, hello).
 *
 * Every step is module-wide (no il_conn, no per-connection state) and runs on the connection's event loop during the
 * handshake, under the hook budget: quick, never blocking. Exceptions: configure runs once when the listener's TLS starts
 * and session_ticket_keys on the agent's TLS timer thread. A step that returns a negative status (or NULL where a
 * certificate is due) fails only that handshake and is a fault of the module (set_error first: the message is in the
 * log line). A tls-only module never attaches to connections.
 *
 * Ownership: every struct a step receives and every pointer in it (server name, ALPN list, cipher list, versions,
 * certificate bytes, lines) is the host's and valid during that call only: copy what you keep. What a step hands back
 * through a pointer (configure's lists) is the module's and is copied by the host as the step returns, so point to
 * static or module-wide memory, never to the step's own stack. */

/* A certificate and key the host loaded and checked: made by il_tls_functions' certificate or configured, or returned
 * by select_certificate's default. The handle stays valid until the module's fini; asking again for unchanged files gives
 * the same handle, so keep handles (a table by name) instead of asking per handshake. Never dereferenced or freed. */
typedef struct il_cert il_cert;

/* What the client sent in its ClientHello (terminating side). */
typedef struct il_client_hello {
    const char *listener;          /* the listener's name */
    il_addr remote;                /* the client's address */
    const char *server_name;       /* SNI, or NULL when the client sent none */
    const char *const *alpn;       /* offered application protocols, in the client's order */
    uint32_t alpn_count;
    uint32_t cipher_count;
    const uint16_t *ciphers;       /* offered cipher suites as TLS code points (0x1301 = TLS_AES_128_GCM_SHA256) */
    const char *const *versions;   /* offered versions: "TLSv1.3", "TLSv1.2", ... */
    uint32_t version_count;
    uint32_t reserved;
} il_client_hello;

/* A peer's certificate chain to verify: a client's (terminating, when client-auth asks for it) or the upstream's. */
typedef struct il_tls_peer {
    const char *listener;
    int32_t terminating;           /* 1: the peer is a client; 0: the peer is the upstream */
    uint32_t chain_count;
    const uint8_t *const *chain;   /* DER certificates, the leaf first */
    const size_t *chain_len;       /* their lengths */
    const char *server_name;       /* originating: the name sent and verified; terminating: NULL */
    const char *auth_type;         /* "RSA", "ECDHE_RSA", ... as the TLS implementation names it */
} il_tls_peer;

/* A handshake that completed or failed, or the one a key log line belongs to. */
typedef struct il_tls_handshake {
    const char *listener;
    int32_t terminating;
    int32_t resumed;               /* 1 if the session was resumed */
    uint64_t connection_id;        /* as the connection listing shows it */
    il_addr peer;
    const char *protocol;          /* "TLSv1.3"; NULL for a failed handshake and in key_log */
    const char *cipher_suite;      /* standard name; NULL as protocol */
    const char *server_name;       /* NULL when none (and as protocol) */
    const char *alpn;              /* agreed protocol, or NULL */
    const char *peer_subject;      /* the peer's leaf subject (RFC 2253), or NULL when it sent none */
} il_tls_handshake;

/* configure's protocols and ciphers (the configured ones going in). */
typedef struct il_tls_params {
    int32_t terminating;
    uint32_t protocol_count;       /* at least one */
    const char *const *protocols;  /* "TLSv1.2", "TLSv1.3" */
    const char *const *ciphers;    /* standard names; none: the TLS implementation's defaults */
    uint32_t cipher_count;
    uint32_t reserved;
} il_tls_params;

/* One session ticket key: 16 bytes of name, 16 of HMAC key, 16 of AES key (the format of a ticket-keys file). */
#define IL_TLS_TICKET_KEY_SIZE 48
#define IL_TLS_TICKET_KEYS_MAX 8
/* handshake_completed's identity buffer, with its NUL. */
#define IL_TLS_IDENTITY_MAX 256

/* The agent's own steps and the certificate helpers, passed to every step (the table and its functions stay valid until
 * plugin fini; the `call` they take is the step's own, valid during it). New entries are only added at the end: `size`
 * says how many the host has. */
typedef struct il_tls_functions {
    uint32_t size;                 /* sizeof(il_tls_functions) of the host */
    uint32_t reserved;
    /* Loads cert (PEM chain), key (PEM PKCS#8) and password_file (its first line; NULL for none) as the agent loads a
     * tls: block's, cached per file. NULL if they are unusable: the reason is logged and is the call's error. */
    il_cert *(*certificate)(il_call *call, const char *cert, const char *key, const char *password_file);
    /* The listener's configured certificate for server_name (exact or wildcard), else its default one. */
    il_cert *(*configured)(il_call *call, const char *server_name);
    /* The defaults of the steps below. A hello or peer passed to them must be the one the step received; a hello may
     * also be the module's copy of it with another server_name (only that is read from it). */
    il_cert *(*select_certificate)(il_call *call, const il_client_hello *hello);
    int (*verify_peer)(il_call *call, const il_tls_peer *peer);               /* IL_ALLOW, or IL_DENY with its reason */
    const char *(*select_alpn)(il_call *call, const il_client_hello *hello);  /* one of hello->alpn, or NULL */
    int (*configure)(il_call *call, il_tls_params *params);                   /* leaves the configured ones: IL_OK */
    int (*handshake_completed)(il_call *call, const il_tls_handshake *hs, char *identity, size_t capacity); /* none: IL_OK */
    void (*handshake_failed)(il_call *call, const il_tls_handshake *hs, const char *reason);
    /* 1.1 */
    int (*session_ticket_keys)(il_call *call, const uint8_t *current, uint32_t current_count, uint8_t *keys, uint32_t *count);
    void (*key_log)(il_call *call, const il_tls_handshake *hs, const char *line);
} il_tls_functions;

typedef struct il_tls_vtable {
    uint32_t minor;
    uint32_t reserved;
    /* 1.0 */
    /* Chooses the certificate shown to the client (terminating). Returns a handle of il_tls_functions, or NULL (a fault). */
    il_cert *(*select_certificate)(void *module, il_call *call, const il_client_hello *hello, const il_tls_functions *defaults);
    /* Accepts the peer's chain (IL_ALLOW) or refuses it: return host->deny(call, reason), sent as bad_certificate. */
    int (*verify_peer)(void *module, il_call *call, const il_tls_peer *peer, const il_tls_functions *defaults);
    /* Chooses among hello->alpn (called only when the client offered some): one of its pointers, or NULL for none. */
    const char *(*select_alpn)(void *module, il_call *call, const il_client_hello *hello, const il_tls_functions *defaults);
    /* Once per listener side when its TLS starts: change params' lists (point them to the module's memory); IL_OK. */
    int (*configure)(void *module, il_call *call, il_tls_params *params, const il_tls_functions *defaults);
    /* Sees a completed handshake and may give the peer an identity: write it NUL-terminated into identity (the host's
     * buffer of `capacity` bytes, empty going in: none). Returns IL_OK. */
    int (*handshake_completed)(void *module, il_call *call, const il_tls_handshake *hs, char *identity, size_t capacity,
                               const il_tls_functions *defaults);
    /* Sees a failed handshake (logged already; the connection is reset). */
    void (*handshake_failed)(void *module, il_call *call, const il_tls_handshake *hs, const char *reason,
                             const il_tls_functions *defaults);
    /* 1.1 */
    /* Chooses the session ticket keys (terminating, provider openssl): `current` holds current_count keys in use, newest
     * first (48 bytes each); write 1 to IL_TLS_TICKET_KEYS_MAX keys into `keys` (the host's, room for the maximum), the
     * one that encrypts first, set *count and return IL_OK. On the agent's TLS thread. */
    int (*session_ticket_keys)(void *module, il_call *call, const uint8_t *current, uint32_t current_count, uint8_t *keys,
                               uint32_t *count, const il_tls_functions *defaults);
    /* Sees each secret a handshake derives as one NSS key log line without its line end (provider openssl). Secret: keep
     * it off logs. */
    void (*key_log)(void *module, il_call *call, const il_tls_handshake *hs, const char *line, const il_tls_functions *defaults);
} il_tls_vtable;

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
