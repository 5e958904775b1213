/*
 * sni-cert-c: the C twin of the Java sample module `sni-cert`, a tls plug-in that overrides one step, the certificate
 * choice. For the same folder and the same server names it shows clients the same certificates.
 *
 * NAME.crt (PEM chain, the leaf first) and NAME.key (PEM PKCS#8 key) in the folder (param `folder`) serve the server name
 * NAME a client asks for (SNI); _.example.com.crt/.key serve *.example.com. A name without files, no name, or a name that
 * could leave the folder gets the agent's default (the listener's own certificate). The agent loads and checks each pair
 * (defaults->certificate); the module keeps the handle per name and looks at the folder again for a name at most every
 * `rescan`, so a handshake costs a table lookup, not a file system call.
 *
 * Steps run on several event loops at once: the table is guarded by a mutex, never held while the agent loads files.
 *
 *   gcc -shared -fPIC -O2 -Wall -Werror -I native/include -o module-sni-cert-c.so native/src/main/c/sni-cert.c
 *
 *   listeners:
 *     - name: web
 *       tls: {cert: default.crt, key: default.key, module: sni-cert-c}
 *   modules:
 *     - name: sni-cert-c
 *       jar: sample-modules/module-sni-cert-c.so
 *       params: {folder: /etc/interlayer/certs, rescan: 2s}
 */
#include <interlayer/module.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NAME_MAX_LEN 253   /* the longest DNS name */
#define TABLE_MAX 4096     /* names remembered; past it, new names are looked up at each handshake */

static const il_host *host;

/* What the folder held for a name when last looked at: its handle, or NULL (the default serves). */
typedef struct entry {
    struct entry *next;
    il_cert *cert;
    uint64_t checked_at;
    char name[];
} entry;

typedef struct {
    il_ctx *ctx;
    const char *folder; /* the host's copy of the parameter, valid until fini */
    uint64_t rescan_ns;
    pthread_mutex_t lock;
    entry *buckets[1024];
    size_t count;
} sni_module;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

static int sni_init(il_ctx *ctx, void **module) {
    size_t len;
    const char *folder = host->param_string(ctx, "folder", &len);
    struct stat st;
    char msg[512];
    if (folder == NULL || len == 0) {
        host->set_error(ctx, IL_ERR_INVALID, "param folder is required: the folder of NAME.crt and NAME.key files");
        return IL_ERR_INVALID;
    }
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, sizeof msg, "folder %s is not a folder; create it, or set param folder to the folder of NAME.crt and NAME.key files",
                 folder);
        host->set_error(ctx, IL_ERR_INVALID, msg);
        return IL_ERR_INVALID;
    }
    sni_module *m = calloc(1, sizeof *m);
    if (m == NULL) {
        host->set_error(ctx, IL_ERR_NOMEM, "out of memory");
        return IL_ERR_NOMEM;
    }
    m->ctx = ctx;
    m->folder = folder;
    m->rescan_ns = (uint64_t) host->param_int(ctx, "rescan");
    pthread_mutex_init(&m->lock, NULL);
    *module = m;
    return IL_OK;
}

static void sni_fini(void *module) {
    sni_module *m = module;
    for (size_t i = 0; i < sizeof m->buckets / sizeof m->buckets[0]; i++) {
        for (entry *e = m->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* A server name as SNI carries it, lower case: labels of [a-z0-9-] not starting or ending with '-', nothing that could
 * leave the folder (the Java sample's pattern). */
static int valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN) return 0;
    char prev = '.';
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (c == '.') {
            if (prev == '.' || prev == '-') return 0;
        } else if (c == '-') {
            if (prev == '.') return 0;
        } else if (!alnum) {
            return 0;
        }
        prev = c;
    }
    return prev != '.' && prev != '-';
}

static int regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The handle for base's files, or NULL when there are none or the agent cannot use them. */
static il_cert *load(sni_module *m, il_call *call, const il_tls_functions *d, const char *base) {
    char crt[4096], key[4096];
    if ((size_t) snprintf(crt, sizeof crt, "%s/%s.crt", m->folder, base) >= sizeof crt
        || (size_t) snprintf(key, sizeof key, "%s/%s.key", m->folder, base) >= sizeof key) {
        return NULL;
    }
    if (!regular_file(crt) || !regular_file(key)) return NULL;
    il_cert *c = d->certificate(call, crt, key, NULL); /* unchanged files: the handle the agent already has */
    if (c == NULL) {
        char msg[4096 + 2 * NAME_MAX_LEN + 160];
        snprintf(msg, sizeof msg, "%s: the agent refused %s (its reason is logged above); the listener's own certificate serves %s"
                 " until the files are fixed", base, crt, base);
        host->log(m->ctx, 1, msg);
    }
    return c;
}

/* Its own files, else the wildcard's of its parent (a name with at least two dots), else NULL. */
static il_cert *look(sni_module *m, il_call *call, const il_tls_functions *d, const char *name) {
    il_cert *c = load(m, call, d, name);
    const char *dot = strchr(name, '.');
    if (c == NULL && dot != NULL && dot > name && strchr(dot + 1, '.') != NULL) {
        char wild[NAME_MAX_LEN + 2];
        snprintf(wild, sizeof wild, "_%s", dot);
        c = load(m, call, d, wild);
    }
    return c;
}

static size_t bucket(const char *name) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t) *p) * 1099511628211u;
    return (size_t) (h % 1024);
}

static entry *find(sni_module *m, const char *name) {
    for (entry *e = m->buckets[bucket(name)]; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0) return e;
    }
    return NULL;
}

static il_cert *sni_select_certificate(void *module, il_call *call, const il_client_hello *hello, const il_tls_functions *d) {
    sni_module *m = module;
    const char *name = hello->server_name; /* the host's: valid during this call only, copied into the table */
    if (name == NULL || !valid_name(name)) return d->select_certificate(call, hello);
    uint64_t now = now_ns();
    pthread_mutex_lock(&m->lock);
    entry *e = find(m, name);
    int fresh = e != NULL && now - e->checked_at < m->rescan_ns;
    il_cert *c = e != NULL ? e->cert : NULL;
    pthread_mutex_unlock(&m->lock);
    if (!fresh) {
        c = look(m, call, d, name);
        pthread_mutex_lock(&m->lock);
        e = find(m, name);
        if (e == NULL && m->count < TABLE_MAX) {
            size_t n = strlen(name);
            e = malloc(sizeof *e + n + 1);
            if (e != NULL) {
                memcpy(e->name, name, n + 1);
                e->next = m->buckets[bucket(name)];
                m->buckets[bucket(name)] = e;
                m->count++;
            }
        }
        if (e != NULL) {
            e->cert = c;
            e->checked_at = now;
        }
        pthread_mutex_unlock(&m->lock);
    }
    return c != NULL ? c : d->select_certificate(call, hello);
}

int tls_sni_cert_c_initvt(il_ctx *ctx, int major, int minor, void *vtable) {
    il_tls_vtable *vt = vtable;
    (void) ctx;
    (void) minor;
    if (major != IL_TLS_MAJOR) {
        return IL_ERR_VERSION;
    }
    vt->minor = 0; /* built for tls 1.0: it overrides a 1.0 step only */
    vt->select_certificate = sni_select_certificate;
    return IL_OK;
}

static const il_param sni_params[] = {
    {"folder", "string", "", "the folder of NAME.crt and NAME.key files (required)"},
    {"rescan", "duration", "1s", "how often a name is looked for again in the folder"},
};

static const il_module_info modules[] = {
    {
        .size = sizeof(il_module_info),
        .name = "sni-cert-c",
        .version = "1.0.0",
        .description = "chooses the certificate by the client's server name (SNI) from a folder of NAME.crt/NAME.key files (the C"
                       " twin of sni-cert)",
        .interfaces = "tls 1.0",
        .priority = 100,
        .params = sni_params,
        .param_count = sizeof sni_params / sizeof sni_params[0],
        .init = sni_init,
        .fini = sni_fini,
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
