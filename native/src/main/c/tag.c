/*
 * tag-c: the C twin of the Java sample module `tag`, byte for byte on the wire.
 *
 * Inserts a fixed tag after every `every` payload bytes on SEND and removes it at the same positions on RECV
 * (the Layer 4.5 paper's sample: a 32-byte tag per 1000 bytes). A C tagger and a Java untagger back to back
 * deliver the original bytes, and the reverse. A RECV byte where the tag should be that does not match it
 * resets the connection (the peer does not run tag with the same parameters).
 *
 * Chunk boundaries do not matter: a tag may be split across chunks. A chunk that reaches no tag position passes
 * untouched (no copy); otherwise the replacement is written straight into the engine's buffer (host->emit).
 *
 *   gcc -shared -fPIC -O2 -Wall -Werror -I native/include -o module-tag-c.so native/src/main/c/tag.c
 */
#include <interlayer/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MISMATCH 1

static const il_host *host;

/* Module-wide: the parameters, read once at init. */
typedef struct {
    il_ctx *ctx;
    int64_t every;
    const uint8_t *tag; /* the host's copy of the parameter, valid until fini */
    size_t tag_len;
} tag_module;

/* Per connection: the position in each direction's tag pattern (touched on the connection's event loop only). */
typedef struct {
    int64_t send_left;  /* SEND: payload bytes still to pass before the next tag */
    int64_t recv_left;  /* RECV: payload bytes expected before the next tag; 0 while the tag is matched */
    size_t recv_tag_pos; /* RECV: bytes of the current tag matched so far */
    uint64_t recv_offset; /* RECV: stream offset of the next byte, for the error message */
} tag_state;

static int tag_init(il_ctx *ctx, void **module) {
    tag_module *m = calloc(1, sizeof *m);
    if (m == NULL) {
        host->set_error(ctx, IL_ERR_NOMEM, "out of memory");
        return IL_ERR_NOMEM;
    }
    m->ctx = ctx;
    m->every = host->param_int(ctx, "every");
    m->tag = (const uint8_t *) host->param_string(ctx, "tag", &m->tag_len);
    if (m->every < 1 || m->tag == NULL || m->tag_len == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "every must be at least 1 (got %lld) and tag must not be empty", (long long) m->every);
        host->set_error(ctx, IL_ERR_INVALID, msg);
        free(m);
        return IL_ERR_INVALID;
    }
    *module = m;
    return IL_OK;
}

static void tag_fini(void *module) {
    free(module);
}

static int tag_attach(void *module, il_conn *conn, void **state) {
    tag_module *m = module;
    tag_state *s = calloc(1, sizeof *s);
    (void) conn;
    if (s == NULL) {
        host->set_error(m->ctx, IL_ERR_NOMEM, "out of memory for a connection's state");
        return IL_ERR_NOMEM;
    }
    s->send_left = m->every;
    s->recv_left = m->every;
    *state = s;
    return IL_OK;
}

static void tag_detach(void *module, void *state, int reason) {
    (void) module;
    (void) reason;
    free(state);
}

static int tag_on_send(void *module, void *state, il_call *call, const uint8_t *data, size_t len) {
    tag_module *m = module;
    tag_state *s = state;
    if ((int64_t) len < s->send_left) {
        s->send_left -= (int64_t) len; /* no tag position in this chunk: forward it as is */
        return IL_PASS;
    }
    /* Payload plus every tag this chunk reaches, reserved at once in the engine's buffer. */
    size_t tags = 1 + (len - (size_t) s->send_left) / (size_t) m->every;
    uint8_t *out = host->emit(call, len + tags * m->tag_len);
    if (out == NULL) {
        host->set_error(m->ctx, IL_ERR_NOMEM, "the replacement does not fit the connection's hold limit");
        return IL_ERR_NOMEM;
    }
    size_t at = 0;
    while (at < len) {
        size_t n = (size_t) s->send_left < len - at ? (size_t) s->send_left : len - at;
        memcpy(out, data + at, n);
        out += n;
        at += n;
        s->send_left -= (int64_t) n;
        if (s->send_left == 0) {
            memcpy(out, m->tag, m->tag_len);
            out += m->tag_len;
            s->send_left = m->every;
        }
    }
    return IL_PASS;
}

static int tag_on_recv(void *module, void *state, il_call *call, const uint8_t *data, size_t len) {
    tag_module *m = module;
    tag_state *s = state;
    if (s->recv_tag_pos == 0 && (int64_t) len < s->recv_left) {
        s->recv_left -= (int64_t) len;
        s->recv_offset += len;
        return IL_PASS;
    }
    /* Count the payload first: it is reserved in the engine's buffer at once (an all-tag chunk gives an empty
     * replacement, which forwards nothing). */
    size_t payload = 0, left = (size_t) s->recv_left, pos = s->recv_tag_pos, at = 0;
    while (at < len) {
        if (left > 0) {
            size_t n = left < len - at ? left : len - at;
            payload += n;
            left -= n;
            at += n;
        } else {
            size_t k = m->tag_len - pos < len - at ? m->tag_len - pos : len - at;
            at += k;
            pos += k;
            if (pos == m->tag_len) {
                pos = 0;
                left = (size_t) m->every;
            }
        }
    }
    uint8_t *out = host->emit(call, payload);
    if (out == NULL) {
        host->set_error(m->ctx, IL_ERR_NOMEM, "the replacement does not fit the connection's hold limit");
        return IL_ERR_NOMEM;
    }
    at = 0;
    while (at < len) {
        if (s->recv_left > 0) {
            size_t n = (size_t) s->recv_left < len - at ? (size_t) s->recv_left : len - at;
            memcpy(out, data + at, n);
            out += n;
            at += n;
            s->recv_left -= (int64_t) n;
            s->recv_offset += n;
            continue;
        }
        size_t k = m->tag_len - s->recv_tag_pos < len - at ? m->tag_len - s->recv_tag_pos : len - at;
        for (size_t i = 0; i < k; i++) {
            if (data[at + i] != m->tag[s->recv_tag_pos + i]) {
                char reason[160];
                snprintf(reason, sizeof reason, "tag mismatch at stream offset %llu: peer is not running tag with the same every/tag",
                         (unsigned long long) (s->recv_offset + i));
                return host->abort_with(call, TAG_MISMATCH, reason);
            }
        }
        at += k;
        s->recv_offset += k;
        s->recv_tag_pos += k;
        if (s->recv_tag_pos == m->tag_len) {
            s->recv_tag_pos = 0;
            s->recv_left = m->every;
        }
    }
    return IL_PASS;
}

static int tag_on_end(void *module, void *state, il_call *call, const uint8_t *rest, size_t len) {
    (void) module; (void) state; (void) call; (void) rest; (void) len;
    return IL_PASS; /* nothing is kept back: tag never asks for more */
}

int stream_tag_c_initvt(il_ctx *ctx, int major, int minor, void *vtable) {
    il_stream_vtable *vt = vtable;
    (void) ctx;
    if (major != IL_STREAM_MAJOR) {
        return IL_ERR_VERSION;
    }
    vt->minor = minor < 1 ? (uint32_t) minor : 1;
    vt->on_send = tag_on_send;
    vt->on_recv = tag_on_recv;
    if (minor >= 1) {
        vt->on_end = tag_on_end;
    }
    return IL_OK;
}

static const il_param tag_params[] = {
    {"every", "int", "1000", "payload bytes between two tags"},
    {"tag", "string", "<interlayer-layer4.5-sample-tag>", "the tag text (UTF-8) inserted into the stream"},
};

static const il_module_info modules[] = {
    {
        .size = sizeof(il_module_info),
        .name = "tag-c",
        .version = "1.0.0",
        .description = "inserts a tag every N bytes on SEND and removes it on RECV (the C twin of tag)",
        .interfaces = "stream 1.1",
        .priority = 50,
        .params = tag_params,
        .param_count = sizeof tag_params / sizeof tag_params[0],
        .init = tag_init,
        .fini = tag_fini,
        .attach = tag_attach,
        .detach = tag_detach,
    },
};

uint32_t interlayer_plugin_get_version(void) {
    return IL_ABI_VERSION;
}

const il_module_info *interlayer_module_list(uint32_t *count) {
    *count = sizeof modules / sizeof modules[0];
    return modules;
}

int interlayer_plugin_init(const il_host *h) {
    host = h;
    return IL_OK;
}

void interlayer_plugin_fini(void) {
    host = NULL;
}
