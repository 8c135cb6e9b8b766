/*
 * console.c - the web console, its JSON API and /metrics.
 *
 * Why a process of its own: the coordinator starts it (like the watcher)
 * when http.listen is set, restarts it when it dies, and it dies with the
 * coordinator (worker_child_init).  Nothing it does (a crash, a slow or
 * hostile client, a hung metadata query) can stop or slow replication: the
 * runners and the scheduler never wait for it.
 *
 * What it reads: the metadata database only, through its own connection
 * (reopened when lost), with short timeouts.  The pending counts `status`
 * gets from the sources are the one figure that needs the nodes: a helper
 * process (forked at start, dies with the console) counts them every 10 s
 * with a short connect and statement timeout and hands the JSON over a
 * pipe, so no request ever waits for a node.
 *
 * What it does: the same functions as the CLI (actions.h): status_json,
 * status_health_eval, conflicts_json, ctl_kick, ctl_set_status,
 * ctl_folder_kick, quarantine_resolve.  The CLI and the console cannot
 * disagree.
 *
 * HTTP is libmicrohttpd with its internal polling thread (one thread serves
 * every connection, so the metadata connection is used by that thread only;
 * the main thread only reads the helper's pipe), a connection limit, a
 * per-IP limit, a timeout for idle or slow clients and a request body limit.
 *
 * Security (docs/CONSOLE.md): a bearer token (http.token: everything;
 * http.readonly_token: GETs) or a login cookie (HttpOnly, SameSite=Strict,
 * signed with a per-process random key) whose form posts carry a CSRF token
 * derived from it by HMAC.  Without any token the console listens on
 * loopback only (console_check_config), accepts only a loopback Host header
 * (no DNS rebinding) and accepts a browser's POST only with the CSRF token
 * of its page.  Every answer carries CSP, X-Frame-Options and nosniff;
 * every answer but the static files Cache-Control: no-store.  No conninfo is
 * ever rendered (errors pass through db_conninfo_redact's rules already).
 *
 * Memory: every response body is malloc'd here and handed to MHD with
 * MHD_RESPMEM_MUST_FREE (MHD frees it); a request's state (struct rq) is
 * freed by on_completed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "buf.h"
#include "config.h"
#include "console.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "sql_embed.h"
#include "version.h"
#include "xmalloc.h"

/* web/ compiled in (Makefile WEB_EMBED, scripts/sql_embed.sh) */
extern const struct sql_file web_files[];

#define BODY_MAX (64 * 1024)   /* request bodies larger than this: 413 */
#define CONN_MAX 64            /* connections at once */
#define CONN_PER_IP 16         /* ... from one address */
#define CONN_TIMEOUT 15        /* seconds a connection may stay silent */
#define SESSION_SECONDS 43200  /* a login lasts 12 hours */
#define PENDING_EVERY 10       /* seconds between two pending counts */
#define CONSOLE_STMT_TIMEOUT 8 /* seconds a metadata query may run */

enum level { L_NONE, L_READ, L_ADMIN };

static volatile sig_atomic_t console_stop;

static struct {
	struct config *cfg;
	PGconn *meta;          /* used by the MHD thread only */
	unsigned char key[32]; /* sessions and CSRF tokens, per process */
	int tokens;            /* http.token or http.readonly_token is set */
	int tls;               /* HTTPS */
	pthread_mutex_t mu;    /* guards pending */
	char *pending;         /* the helper's last count, "{}" until then */
	pid_t helper;          /* the pending counter */
	unsigned short port;   /* the port we listen on */
} G = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- the listen address ---- */

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int v6;
	int loopback;
	unsigned short port;
};

/* "host:port", "[v6]:port": 0, or -1 with err. */
static int
listen_parse(const char *spec, struct listen_addr *la, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	int rc;
	long pv;
	char *end;

	memset(la, 0, sizeof(*la));
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		port = close + 2;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host) || colon == spec)
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	errno = 0;
	pv = strtol(port, &end, 10);
	if (errno || end == port || *end || pv < 1 || pv > 65535)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host,
		    rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -1;
	}
	memcpy(&la->ss, res->ai_addr, res->ai_addrlen);
	la->len = res->ai_addrlen;
	la->port = (unsigned short)pv;
	if (res->ai_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(void *)res->ai_addr;

		la->v6 = 1;
		la->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(void *)res->ai_addr;

		la->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "it is not an address and a port");
	return -1;
}

static const char *
cfg_file(const struct config *cfg)
{
	return cfg->path ? cfg->path : "the configuration";
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (fp == NULL) {
		snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	if (b.data == NULL)
		buf_puts(&b, "");
	return buf_steal(&b);
}

int
console_check_config(const struct config *cfg, char *err, size_t errlen)
{
	struct listen_addr la;
	const char *file = cfg_file(cfg);
	char inner[ERRLEN];

	if (cfg->http_listen == NULL || cfg->http_listen[0] == '\0')
		return 0;
	if (listen_parse(cfg->http_listen, &la, inner, sizeof(inner)) < 0) {
		snprintf(err, errlen,
		    "http.listen = \"%s\" in %s: %s\nhint: write \"127.0.0.1:8675\" (or "
		    "\"[::1]:8675\"), or leave it empty to turn the console off",
		    cfg->http_listen, file, inner);
		return -1;
	}
	if (!la.loopback && cfg->http_token[0] == '\0') {
		snprintf(err, errlen,
		    "http.listen = \"%s\" (in %s) listens beyond loopback, but http.token is not "
		    "set: anyone who reaches that address could pause syncs and delete rows\n"
		    "hint: set http.token = \"...\" in the http group of %s to a long random "
		    "string (openssl rand -hex 32), or listen on \"127.0.0.1:%u\"",
		    cfg->http_listen, file, file, la.port);
		return -1;
	}
	if ((cfg->http_token[0] && strlen(cfg->http_token) < 16) ||
	    (cfg->http_readonly_token[0] && strlen(cfg->http_readonly_token) < 16)) {
		snprintf(err, errlen,
		    "http.%s in %s is shorter than 16 characters\nhint: use a long random string "
		    "(openssl rand -hex 32)",
		    cfg->http_token[0] && strlen(cfg->http_token) < 16 ? "token" : "readonly_token",
		    file);
		return -1;
	}
	if (cfg->http_token[0] && strcmp(cfg->http_token, cfg->http_readonly_token) == 0) {
		snprintf(err, errlen,
		    "http.token and http.readonly_token in %s are the same: the read-only token "
		    "would allow every action\nhint: give them different values",
		    file);
		return -1;
	}
	if (cfg->http_readonly_token[0] && !cfg->http_token[0]) {
		snprintf(err, errlen,
		    "http.readonly_token is set in %s but http.token is not: nobody could act "
		    "from the console\nhint: set http.token too",
		    file);
		return -1;
	}
	if ((cfg->http_tls_cert[0] != '\0') != (cfg->http_tls_key[0] != '\0')) {
		snprintf(err, errlen,
		    "only one of http.tls_cert and http.tls_key is set in %s\nhint: set both (a "
		    "PEM certificate and its key) for HTTPS, or neither for HTTP",
		    file);
		return -1;
	}
	if (cfg->http_tls_cert[0]) {
		char *c = read_file(cfg->http_tls_cert, inner, sizeof(inner));
		char *k = c ? read_file(cfg->http_tls_key, inner, sizeof(inner)) : NULL;

		free(c);
		free(k);
		if (c == NULL || k == NULL) {
			snprintf(err, errlen, "http.tls_cert/http.tls_key in %s: %s", file, inner);
			return -1;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen,
			    "http.tls_cert is set in %s but this libmicrohttpd has no TLS "
			    "support\nhint: install a libmicrohttpd built with GnuTLS (Debian's is), "
			    "or put a TLS proxy in front of a loopback console",
			    file);
			return -1;
		}
	}
	return 0;
}

/* ---- small helpers ---- */

static void
html_esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#39;"); break;
		default: buf_putc(b, *s);
		}
	}
}

/* A name of a sync, folder or node as the schema allows them; quarantine ids are digits. */
static int
name_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (; *s; s++, n++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			(*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return n <= 63;
}

static int
digits_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++, n++)
		if (*s < '0' || *s > '9')
			return 0;
	return n <= 18;
}

static void
hmac_hex(const char *msg, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned int i;

	HMAC(EVP_sha256(), G.key, sizeof(G.key), (const unsigned char *)msg, strlen(msg), md,
	    &mdlen);
	for (i = 0; i < mdlen && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Equal strings, in a time that does not depend on where they differ (nor on their lengths). */
static int
secret_eq(const char *given, const char *secret)
{
	char a[80], b[80];

	if (secret == NULL || secret[0] == '\0' || given == NULL)
		return 0;
	hmac_hex(given, a, sizeof(a));
	hmac_hex(secret, b, sizeof(b));
	return CRYPTO_memcmp(a, b, strlen(a)) == 0;
}

/* ---- the metadata connection (MHD thread only) ---- */

static PGconn *
meta_get(char *err, size_t errlen)
{
	if (G.meta && PQstatus(G.meta) == CONNECTION_OK)
		return G.meta;
	db_close(G.meta);
	G.meta = meta_connect(G.cfg, err, errlen);
	if (G.meta == NULL)
		return NULL;
	if (meta_check_installed(G.meta, G.cfg, err, errlen) < 0 ||
	    db_exec(G.meta, "SET application_name = 'repctl console'", err, errlen) < 0) {
		db_close(G.meta);
		G.meta = NULL;
	}
	return G.meta;
}

static char *
pending_copy(void)
{
	char *p;

	pthread_mutex_lock(&G.mu);
	p = xstrdup(G.pending ? G.pending : "{}");
	pthread_mutex_unlock(&G.mu);
	return p;
}

/* ---- requests ---- */

struct field {
	char *k, *v;
};

struct rq {
	struct MHD_Connection *c;
	const char *method; /* GET, HEAD, POST, ... */
	const char *url;
	struct buf body;
	int too_big;
	int level;         /* enum level */
	int via_bearer;    /* authenticated by Authorization: Bearer */
	int bad_bearer;    /* a bearer token was given and is wrong */
	char session[160]; /* the login cookie's value, "" when none */
	char csrf[80];     /* the CSRF token forms of this session carry */
	struct field *f;   /* the body's form fields */
	int nf;
	int partial; /* X-Repctl-Partial: only the main content */
};

static void
rq_free(struct rq *q)
{
	int i;

	if (q == NULL)
		return;
	for (i = 0; i < q->nf; i++) {
		free(q->f[i].k);
		free(q->f[i].v);
	}
	free(q->f);
	buf_free(&q->body);
	free(q);
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	    : c >= 'a' && c <= 'f'  ? c - 'a' + 10
	    : c >= 'A' && c <= 'F'  ? c - 'A' + 10
				    : -1;
}

static char *
form_decode(const char *s, size_t n)
{
	char *o = xmalloc(n + 1);
	size_t i, j = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			o[j++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			o[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	return o;
}

/* Parse an application/x-www-form-urlencoded body. */
static void
form_parse(struct rq *q)
{
	const char *p = q->body.data, *end;

	if (p == NULL)
		return;
	end = p + q->body.len;
	while (p < end && q->nf < 64) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));

		if (stop > p) {
			q->f = xrealloc(q->f, sizeof(*q->f) * (size_t)(q->nf + 1));
			q->f[q->nf].k = form_decode(p, (size_t)((eq ? eq : stop) - p));
			q->f[q->nf].v =
			    eq ? form_decode(eq + 1, (size_t)(stop - eq - 1)) : xstrdup("");
			q->nf++;
		}
		p = stop + 1;
	}
}

/* A parameter: the form body's, else the query string's; NULL when absent or empty. */
static const char *
param(struct rq *q, const char *name)
{
	const char *v = NULL;
	int i;

	for (i = 0; i < q->nf; i++)
		if (strcmp(q->f[i].k, name) == 0) {
			v = q->f[i].v;
			break;
		}
	if (v == NULL)
		v = MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
	return v && *v ? v : NULL;
}

static const char *
header(struct rq *q, const char *name)
{
	return MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, name);
}

static int
peer_loopback(struct rq *q)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(q->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >>
			   24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		    (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/* A Host header naming loopback (or none, HTTP/1.0): what a tokenless console accepts. */
static int
host_loopback(struct rq *q)
{
	const char *h = header(q, MHD_HTTP_HEADER_HOST);
	size_t n;

	if (h == NULL)
		return 1;
	if (h[0] == '[')
		return strncmp(h, "[::1]", 5) == 0 && (h[5] == '\0' || h[5] == ':');
	n = strcspn(h, ":");
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	if (strncmp(h, "127.", 4) == 0) {
		size_t i;

		for (i = 4; i < n; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
				return 0;
		return 1;
	}
	return 0;
}

/* The session cookie "ROLE.EXPIRY.SIG" (ROLE a or r): its level, L_NONE when not valid. */
static int
session_level(const char *v)
{
	char role, msg[64], sig[80];
	long long exp;
	int n = 0;

	if (v == NULL || sscanf(v, "%c.%lld.%n", &role, &exp, &n) != 2 || n <= 0 ||
	    (role != 'a' && role != 'r') || exp < (long long)time(NULL))
		return L_NONE;
	snprintf(msg, sizeof(msg), "session:%c.%lld", role, exp);
	hmac_hex(msg, sig, sizeof(sig));
	if (strlen(v + n) != strlen(sig) || CRYPTO_memcmp(v + n, sig, strlen(sig)) != 0)
		return L_NONE;
	return role == 'a' ? L_ADMIN : L_READ;
}

static void
session_make(int level, char *out, size_t outlen)
{
	char msg[64], sig[80];
	long long exp = (long long)time(NULL) + SESSION_SECONDS;
	char role = level == L_ADMIN ? 'a' : 'r';

	snprintf(msg, sizeof(msg), "session:%c.%lld", role, exp);
	hmac_hex(msg, sig, sizeof(sig));
	snprintf(out, outlen, "%c.%lld.%s", role, exp, sig);
}

static void
csrf_for(const char *session, char *out, size_t outlen)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "csrf:%s", session && *session ? session : "anonymous");
	hmac_hex(msg, out, outlen);
}

/* Who is asking: bearer token, login cookie, or (no token configured) loopback. */
static void
authenticate(struct rq *q)
{
	const char *auth = header(q, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *cookie = MHD_lookup_connection_value(q->c, MHD_COOKIE_KIND, "repctl_session");

	q->level = L_NONE;
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && G.tokens) {
		const char *t = auth + 7;

		while (*t == ' ')
			t++;
		if (secret_eq(t, G.cfg->http_token))
			q->level = L_ADMIN;
		else if (secret_eq(t, G.cfg->http_readonly_token))
			q->level = L_READ;
		else
			q->bad_bearer = 1;
		q->via_bearer = q->level != L_NONE;
	} else if (G.tokens && cookie && session_level(cookie) != L_NONE) {
		q->level = session_level(cookie);
		snprintf(q->session, sizeof(q->session), "%s", cookie);
	} else if (!G.tokens && peer_loopback(q)) {
		q->level = L_ADMIN;
	}
	csrf_for(q->session, q->csrf, sizeof(q->csrf));
}

/* ---- answers ---- */

static enum MHD_Result
send_body(struct rq *q, unsigned status, const char *ctype, char *body, int cache)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = body ? strlen(body) : 0;

	if (body == NULL)
		body = xstrdup("");
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action "
	    "'self'; base-uri 'none'");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(
	    r, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? "public, max-age=300" : "no-store");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(
		    r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"repctl\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    strncmp(q->url, "/api/v1/", 8) == 0 && strcmp(q->method, "GET") != 0 &&
			    strcmp(q->method, "HEAD") != 0 &&
			    (strstr(q->url, "/kick") || strstr(q->url, "/pause") ||
				strstr(q->url, "/resume") || strstr(q->url, "/resolve") ||
				strstr(q->url, "/sync"))
			? "POST"
			: "GET, HEAD");
	ret = MHD_queue_response(q->c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
send_json(struct rq *q, unsigned status, char *json)
{
	size_t n = json ? strlen(json) : 0;

	if (json && (n == 0 || json[n - 1] != '\n')) {
		char *t = xasprintf("%s\n", json);

		free(json);
		json = t;
	}
	return send_body(q, status, "application/json; charset=utf-8", json, 0);
}

static enum MHD_Result send_error(struct rq *q, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result
send_error(struct rq *q, unsigned status, const char *fmt, ...)
{
	char msg[ERRLEN];
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_puts(&b, "{\"error\": ");
	buf_json_str(&b, msg);
	buf_puts(&b, "}");
	return send_json(q, status, buf_steal(&b));
}

static enum MHD_Result
send_redirect(struct rq *q, const char *to)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'");
	ret = MHD_queue_response(q->c, MHD_HTTP_SEE_OTHER, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *
web_file(const char *name)
{
	const struct sql_file *f;

	for (f = web_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f->text;
	return NULL;
}

/* ---- HTML ---- */

/* The whole page: web/layout.html with main filled in (or main alone for a partial refresh). */
static enum MHD_Result
send_page(struct rq *q, unsigned status, const char *title, const char *nav, int refresh,
    struct buf *main_html)
{
	const char *t = web_file("layout.html");
	struct buf b = BUF_INIT;
	const char *p;

	if (q->partial || t == NULL) {
		char *m = buf_steal(main_html);

		return send_body(q, status, "text/html; charset=utf-8", m, 0);
	}
	for (p = t; *p;) {
		const char *open = strstr(p, "{{"), *close;
		char key[32];

		if (open == NULL || (close = strstr(open, "}}")) == NULL ||
		    (size_t)(close - open - 2) >= sizeof(key)) {
			buf_puts(&b, p);
			break;
		}
		buf_add(&b, p, (size_t)(open - p));
		memcpy(key, open + 2, (size_t)(close - open - 2));
		key[close - open - 2] = '\0';
		if (strcmp(key, "title") == 0)
			html_esc(&b, title);
		else if (strcmp(key, "main") == 0)
			buf_puts(&b, main_html->data ? main_html->data : "");
		else if (strcmp(key, "refresh") == 0)
			buf_puts(&b, refresh ? "1" : "0");
		else if (strcmp(key, "version") == 0)
			buf_puts(&b, REPCTL_VERSION);
		else if (strncmp(key, "nav_", 4) == 0)
			buf_puts(&b, nav && strcmp(key + 4, nav) == 0 ? " class=\"active\"" : "");
		else if (strcmp(key, "who") == 0) {
			if (!G.tokens)
				buf_puts(&b, "loopback, no token configured");
			else if (q->via_bearer)
				buf_puts(
				    &b, q->level == L_ADMIN ? "admin token" : "read-only token");
			else if (q->session[0]) {
				buf_printf(&b,
				    "%s &middot; <form method=\"post\" action=\"/logout\" "
				    "data-plain><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
				    "<button class=\"secondary\">Log out</button></form>",
				    q->level == L_ADMIN ? "admin" : "read-only", q->csrf);
			}
		}
		p = close + 2;
	}
	buf_free(main_html);
	return send_body(q, status, "text/html; charset=utf-8", buf_steal(&b), 0);
}

static int
numeric_type(Oid t)
{
	return t == 20 || t == 21 || t == 23 || t == 700 || t == 701 || t == 1700;
}

/*
 * An HTML table of r.  Columns named "_..." are not shown: "_href" links
 * the first column, "_row" is the row's class suffix (a health word).  A
 * column "health" is shown as a coloured badge, numbers right-aligned.
 */
static void
html_table(struct buf *b, PGresult *r, const char *empty)
{
	int i, j, nf = PQnfields(r), href = PQfnumber(r, "_href"), row = PQfnumber(r, "_row");

	if (PQntuples(r) == 0) {
		buf_printf(b, "<p class=\"muted\">%s</p>\n", empty);
		return;
	}
	buf_puts(b, "<table>\n<thead><tr>");
	for (j = 0; j < nf; j++)
		if (PQfname(r, j)[0] != '_') {
			buf_puts(b, "<th>");
			html_esc(b, PQfname(r, j));
			buf_puts(b, "</th>");
		}
	buf_puts(b, "</tr></thead>\n<tbody>\n");
	for (i = 0; i < PQntuples(r); i++) {
		buf_puts(b, "<tr");
		if (row >= 0 && !PQgetisnull(r, i, row)) {
			buf_puts(b, " class=\"row-");
			html_esc(b, PQgetvalue(r, i, row));
			buf_puts(b, "\"");
		}
		buf_puts(b, ">");
		for (j = 0; j < nf; j++) {
			const char *v = PQgetvalue(r, i, j);

			if (PQfname(r, j)[0] == '_')
				continue;
			buf_puts(b, numeric_type(PQftype(r, j)) ? "<td class=\"num\">" : "<td>");
			if (PQgetisnull(r, i, j)) {
				buf_puts(b, "<span class=\"muted\">-</span>");
			} else if (strcmp(PQfname(r, j), "health") == 0) {
				buf_puts(b, "<span class=\"badge h-");
				html_esc(b, v);
				buf_puts(b, "\">");
				html_esc(b, v);
				buf_puts(b, "</span>");
			} else if (j == 0 && href >= 0 && !PQgetisnull(r, i, href)) {
				buf_puts(b, "<a href=\"");
				html_esc(b, PQgetvalue(r, i, href));
				buf_puts(b, "\">");
				html_esc(b, v);
				buf_puts(b, "</a>");
			} else {
				html_esc(b, v);
			}
			buf_puts(b, "</td>");
		}
		buf_puts(b, "</tr>\n");
	}
	buf_puts(b, "</tbody></table>\n");
}

/* A form that POSTs to action with the CSRF token (and return_to). */
static void
html_button(struct buf *b, struct rq *q, const char *action, const char *label, const char *cls,
    const char *extra_name, const char *extra_value, const char *redirect)
{
	buf_puts(b, "<form method=\"post\" action=\"");
	html_esc(b, action);
	buf_puts(b, "\"");
	if (redirect) {
		buf_puts(b, " data-redirect=\"");
		html_esc(b, redirect);
		buf_puts(b, "\"");
	}
	buf_printf(b, "><input type=\"hidden\" name=\"csrf\" value=\"%s\">", q->csrf);
	buf_puts(b, "<input type=\"hidden\" name=\"return_to\" value=\"");
	html_esc(b, redirect ? redirect : q->url);
	buf_puts(b, "\">");
	if (extra_name) {
		buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", extra_name);
		html_esc(b, extra_value);
		buf_puts(b, "\">");
	}
	buf_printf(b, "<button%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	html_esc(b, label);
	buf_puts(b, "</button></form>");
}

/* Run sql ($1 = the status JSON, $2.. = more) and render its rows as a table. */
static int
html_query_table(struct buf *b, PGconn *meta, const char *sql, int n, const char *const *p,
    const char *empty, char *err, size_t errlen)
{
	PGresult *r = db_query(meta, sql, n, p, err, errlen);

	if (r == NULL)
		return -1;
	html_table(b, r, empty);
	PQclear(r);
	return 0;
}

#define SYNC_COLS                                                                                  \
	"s->>'name' AS sync, '/sync/' || (s->>'name') AS _href, s->>'health' AS _row, "            \
	"s->>'health' AS health, s->>'state' AS state, s->>'last_good' AS last_good, "             \
	"(s->>'time')::numeric AS \"time_s\", s->>'last_i_u_d' AS \"last_i/u/d\", "                \
	"(s->>'pending')::bigint AS pending, (s->>'lag_s')::numeric AS lag_s, "                    \
	"(s->>'conflicts')::bigint AS conflicts, (s->>'quarantined')::bigint AS quarantined, "     \
	"s->>'circuit' AS circuit, s->>'last_bad' AS last_bad, "                                   \
	"concat_ws('; ', 'tables paused: ' || (s->>'paused_tables'), s->>'last_error') AS reason " \
	"FROM jsonb_array_elements($1::jsonb->'syncs') s"

#define NODE_COLS                                                                                   \
	"n->>'node' AS node, CASE WHEN (n->>'circuit') <> 'closed' THEN 'red' "                     \
	"WHEN (n->>'failures')::int > 0 THEN 'yellow' WHEN n->>'last_contact' IS NULL THEN 'gray' " \
	"ELSE 'green' END AS _row, "                                                                \
	"CASE WHEN (n->>'circuit') <> 'closed' OR (n->>'failures')::int > 0 THEN 'no' "             \
	"WHEN n->>'last_contact' IS NULL THEN 'unknown' ELSE 'yes' END AS reachable, "              \
	"n->>'last_contact' AS last_contact, (n->>'failures')::int AS failures, "                   \
	"n->>'circuit' AS circuit, (n->>'clock_offset_ms')::numeric AS clock_offset_ms, "           \
	"concat_ws('; ', n->>'warning', n->>'last_error') AS problem "                              \
	"FROM jsonb_array_elements($1::jsonb->'nodes') n"

#define FOLDER_COLS                                                                      \
	"f->>'folder' AS folder, '/folders#f-' || (f->>'folder') AS _href, "             \
	"f->>'health' AS _row, f->>'health' AS health, f->>'state' AS state, "           \
	"f->>'last_good' AS last_good, (f->>'time')::numeric AS time_s, "                \
	"f->>'last_moved' AS last_moved, (f->>'conflicts')::bigint AS conflict_copies, " \
	"f->>'last_bad' AS last_bad, f->>'last_error' AS last_error "                    \
	"FROM jsonb_array_elements($1::jsonb->'folders') f"

/* The status JSON (for pages and /metrics), with the helper's pending counts. */
static char *
status_now(PGconn *meta, const char *only, char *err, size_t errlen)
{
	char *pend = pending_copy(), *out = NULL;

	if (only) {
		/* the pending figure of that sync alone */
		const char *p[2] = { pend, only };
		char *one = db_value(meta,
		    "SELECT jsonb_build_object($2::text, $1::jsonb -> $2::text)::text "
		    "WHERE $1::jsonb ? $2::text UNION ALL SELECT '{}' LIMIT 1",
		    2, p, err, errlen);

		free(pend);
		pend = one ? one : xstrdup("{}");
	}
	if (status_json(G.cfg, meta, only, pend, &out, err, errlen) != ACT_OK)
		out = NULL;
	free(pend);
	return out;
}

static void
coordinator_line(struct buf *b, PGconn *meta, const char *st)
{
	const char *p[1] = { st };
	char err[ERRLEN];
	PGresult *r = db_query(meta,
	    "SELECT ($1::jsonb->'coordinator'->>'running')::bool, "
	    "$1::jsonb->'coordinator'->>'where'",
	    1, p, err, sizeof(err));

	if (r == NULL)
		return;
	if (PQgetvalue(r, 0, 0)[0] == 't') {
		buf_puts(b, "<p>Coordinator <span class=\"badge h-green\">running</span> ");
		html_esc(b, PQgetvalue(r, 0, 1));
		buf_puts(b, "</p>\n");
	} else {
		buf_puts(b, "<p>Coordinator <span class=\"badge h-red\">not running</span></p>\n");
	}
	PQclear(r);
}

static enum MHD_Result
page_fleet(struct rq *q, PGconn *meta)
{
	char err[ERRLEN];
	struct buf b = BUF_INIT;
	char *st = status_now(meta, NULL, err, sizeof(err));
	const char *p[1] = { st };

	if (st == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	buf_puts(&b, "<h1>Fleet</h1>\n");
	coordinator_line(&b, meta, st);
	buf_puts(&b, "<h2>Syncs</h2>\n");
	if (html_query_table(
		&b, meta, "SELECT " SYNC_COLS, 1, p, "No sync yet.", err, sizeof(err)) < 0 ||
	    (buf_puts(&b, "<h2>Nodes</h2>\n"),
		html_query_table(
		    &b, meta, "SELECT " NODE_COLS, 1, p, "No node yet.", err, sizeof(err))) < 0 ||
	    (buf_puts(&b, "<h2>Folders</h2>\n"),
		html_query_table(
		    &b, meta, "SELECT " FOLDER_COLS, 1, p, "No folder.", err, sizeof(err))) < 0) {
		free(st);
		buf_free(&b);
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	}
	free(st);
	return send_page(q, MHD_HTTP_OK, "Fleet", "fleet", 1, &b);
}

/* A small inline SVG: rows per run (bars) and duration (line) over the last day. */
static void
runs_chart(struct buf *b, PGresult *r)
{
	int i, n = PQntuples(r);
	double maxrows = 1, maxdur = 0.001, w = 720, h = 140, x0 = 40, bw;

	for (i = 0; i < n; i++) {
		double rows = atof(PQgetvalue(r, i, 1)), dur = atof(PQgetvalue(r, i, 2));

		if (rows > maxrows)
			maxrows = rows;
		if (dur > maxdur)
			maxdur = dur;
	}
	buf_printf(b,
	    "<svg class=\"chart\" role=\"img\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f "
	    "%.0f\" aria-label=\"rows and duration per run, last 24 hours\">\n",
	    w, h + 20, w, h + 20);
	buf_printf(b, "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>\n",
	    x0, h, w, h);
	buf_printf(b, "<text x=\"2\" y=\"12\">%.0f rows</text>\n", maxrows);
	buf_printf(
	    b, "<text x=\"%.0f\" y=\"12\" text-anchor=\"end\">%.3g s</text>\n", w - 2, maxdur);
	buf_printf(b,
	    "<text x=\"%.0f\" y=\"%.0f\">%d run(s) in the last 24 h: bars = rows (I+U+D), line = "
	    "duration</text>\n",
	    x0, h + 15, n);
	if (n == 0) {
		buf_puts(b, "</svg>\n");
		return;
	}
	bw = (w - x0) / n;
	for (i = 0; i < n; i++) {
		double rows = atof(PQgetvalue(r, i, 1));
		double bh = rows / maxrows * (h - 20);

		buf_printf(b,
		    "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>"
		    "run %s: %s rows, %s s</title></rect>\n",
		    x0 + i * bw, h - bh, bw > 2 ? bw - 1 : bw, bh, PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
	}
	buf_puts(b, "<polyline class=\"dur\" points=\"");
	for (i = 0; i < n; i++)
		buf_printf(b, "%.1f,%.1f ", x0 + i * bw + bw / 2,
		    h - atof(PQgetvalue(r, i, 2)) / maxdur * (h - 20));
	buf_puts(b, "\"/>\n</svg>\n");
}

static enum MHD_Result
page_sync(struct rq *q, PGconn *meta, const char *name)
{
	char err[ERRLEN];
	struct buf b = BUF_INIT;
	char *st;
	const char *p[2];
	PGresult *r;
	int e =
	    meta_exists(meta, "SELECT 1 FROM repctl.sync WHERE name = $1", name, err, sizeof(err));

	if (e < 0)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	if (e == 0)
		return send_error(q, MHD_HTTP_NOT_FOUND, "no sync '%s'", name);
	st = status_now(meta, name, err, sizeof(err));
	if (st == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	p[0] = st;
	p[1] = name;
	buf_puts(&b, "<h1>Sync ");
	html_esc(&b, name);
	buf_puts(&b, "</h1>\n");
	if (html_query_table(&b, meta, "SELECT " SYNC_COLS, 1, p, "", err, sizeof(err)) < 0)
		goto fail;
	if (q->level == L_ADMIN) {
		char *a;

		buf_puts(&b, "<div class=\"actions\">");
		a = xasprintf("/api/v1/syncs/%s/kick", name);
		html_button(&b, q, a, "Sync now", NULL, NULL, NULL, NULL);
		free(a);
		a = xasprintf("/api/v1/syncs/%s/pause", name);
		html_button(&b, q, a, "Pause", "secondary", NULL, NULL, NULL);
		free(a);
		a = xasprintf("/api/v1/syncs/%s/resume", name);
		html_button(&b, q, a, "Resume", "secondary", NULL, NULL, NULL);
		free(a);
		buf_puts(&b, "</div>\n");
	}
	buf_puts(&b, "<h2>Runs, last 24 hours</h2>\n");
	r = db_query(meta,
	    "SELECT id, inserts + updates + deletes, "
	    "round(extract(epoch FROM ended_at - started_at)::numeric, 3) FROM ("
	    "SELECT * FROM repctl.run WHERE sync = $1 AND ended_at IS NOT NULL "
	    "AND started_at > now() - interval '1 day' ORDER BY id DESC LIMIT 300) x ORDER BY id",
	    1, p + 1, err, sizeof(err));
	if (r == NULL)
		goto fail;
	runs_chart(&b, r);
	PQclear(r);
	buf_puts(&b, "<h2>Recent runs</h2>\n");
	if (html_query_table(&b, meta,
		"SELECT id AS run, CASE WHEN ok THEN 'green' WHEN NOT ok THEN 'red' ELSE 'yellow' "
		"END AS _row, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS') AS started, "
		"round(extract(epoch FROM ended_at - started_at)::numeric, 3) AS time_s, "
		"CASE WHEN ok THEN 'good' WHEN NOT ok THEN 'bad' ELSE 'running' END AS result, "
		"inserts, updates, deletes, conflicts, edges_ok, edges_failed, "
		"concat_ws('; ', warning, error) AS message FROM repctl.run WHERE sync = $2 "
		"AND $1::text IS NOT NULL ORDER BY id DESC LIMIT 20",
		2, p, "No run yet.", err, sizeof(err)) < 0)
		goto fail;
	buf_puts(&b, "<h2>Nodes of the sync</h2>\n");
	if (html_query_table(&b, meta,
		"SELECT node, role, ord AS position FROM repctl.sync_node WHERE sync = $2 "
		"AND $1::text IS NOT NULL ORDER BY ord, node",
		2, p, "No node.", err, sizeof(err)) < 0)
		goto fail;
	buf_puts(&b, "<h2>Edges and positions</h2>\n");
	if (html_query_table(&b, meta,
		"SELECT source || ' -> ' || target AS edge, count(*) AS tables, "
		"to_char(min(updated_at), 'YYYY-MM-DD HH24:MI:SS') AS oldest_position, "
		"to_char(max(updated_at), 'YYYY-MM-DD HH24:MI:SS') AS newest_position "
		"FROM repctl.position WHERE sync = $2 AND $1::text IS NOT NULL "
		"GROUP BY source, target ORDER BY 1",
		2, p, "No edge has run yet.", err, sizeof(err)) < 0)
		goto fail;
	free(st);
	return send_page(q, MHD_HTTP_OK, name, NULL, 1, &b);
fail:
	free(st);
	buf_free(&b);
	return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
}

static int
invalid_input(void)
{
	const char *s = db_last_sqlstate();

	return s && strncmp(s, "22", 2) == 0;
}

static enum MHD_Result
page_conflicts(struct rq *q, PGconn *meta)
{
	char err[ERRLEN], *js = NULL;
	const char *sync = param(q, "sync"), *table = param(q, "table"), *since = param(q, "since");
	struct buf b = BUF_INIT;
	PGresult *r, *names;
	int i, rc;
	const char *p[1];
	char last[32] = "";

	rc = conflicts_json(meta, sync, table, since, 50, &js, err, sizeof(err));
	if (rc != ACT_OK)
		return send_error(q,
		    invalid_input() ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, "%s",
		    err);
	buf_puts(&b,
	    "<h1>Conflicts</h1>\n<form class=\"filters\" method=\"get\" action=\"/conflicts\">"
	    "<label>sync <select name=\"sync\"><option value=\"\">all</option>");
	names =
	    db_query(meta, "SELECT name FROM repctl.sync ORDER BY 1", 0, NULL, err, sizeof(err));
	for (i = 0; names && i < PQntuples(names); i++) {
		buf_puts(&b, "<option");
		if (sync && strcmp(sync, PQgetvalue(names, i, 0)) == 0)
			buf_puts(&b, " selected");
		buf_puts(&b, ">");
		html_esc(&b, PQgetvalue(names, i, 0));
		buf_puts(&b, "</option>");
	}
	PQclear(names);
	buf_puts(&b, "</select></label><label>table <input name=\"table\" value=\"");
	html_esc(&b, table);
	buf_puts(&b,
	    "\"></label><label>since <input name=\"since\" placeholder=\"2024-06-01 "
	    "12:00\" value=\"");
	html_esc(&b, since);
	buf_puts(&b,
	    "\"></label><button>Filter</button></form>\n"
	    "<p class=\"muted\">The newest 50; both versions side by side, differing "
	    "columns highlighted, the winner outlined.</p>\n");
	p[0] = js;
	r = db_query(meta,
	    "SELECT c->>'id', to_char((c->>'resolved_at')::timestamptz, 'YYYY-MM-DD HH24:MI:SS'), "
	    "c->>'sync', (c->>'schema_name') || '.' || (c->>'table_name'), (c->'pk')::text, "
	    "c->>'local_node', c->>'remote_node', c->>'winner', c->>'rule', k.key, "
	    "(c->'local_row'->k.key)::text, (c->'remote_row'->k.key)::text, "
	    "(c->'local_row'->k.key) IS DISTINCT FROM (c->'remote_row'->k.key), "
	    "jsonb_typeof(c->'local_row') = 'object', jsonb_typeof(c->'remote_row') = 'object' "
	    "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(c, o) "
	    "LEFT JOIN LATERAL (SELECT DISTINCT key FROM jsonb_object_keys("
	    "  CASE WHEN jsonb_typeof(c->'local_row') = 'object' THEN c->'local_row' ELSE '{}' END "
	    "  || CASE WHEN jsonb_typeof(c->'remote_row') = 'object' THEN c->'remote_row' "
	    "  ELSE '{}' END) AS key) k ON true ORDER BY x.o DESC, k.key",
	    1, p, err, sizeof(err));
	free(js);
	if (r == NULL) {
		buf_free(&b);
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	}
	if (PQntuples(r) == 0)
		buf_puts(&b, "<p class=\"muted\">No conflict logged.</p>\n");
	for (i = 0; i < PQntuples(r); i++) {
		int lw = strcmp(PQgetvalue(r, i, 7), PQgetvalue(r, i, 5)) == 0;
		int rw = strcmp(PQgetvalue(r, i, 7), PQgetvalue(r, i, 6)) == 0;

		if (strcmp(last, PQgetvalue(r, i, 0)) != 0) {
			if (last[0])
				buf_puts(&b, "</tbody></table></div>\n");
			snprintf(last, sizeof(last), "%s", PQgetvalue(r, i, 0));
			buf_puts(&b, "<div class=\"conflict\"><strong>#");
			html_esc(&b, PQgetvalue(r, i, 0));
			buf_puts(&b, "</strong> ");
			html_esc(&b, PQgetvalue(r, i, 1));
			buf_puts(&b, " &middot; sync ");
			html_esc(&b, PQgetvalue(r, i, 2));
			buf_puts(&b, " &middot; <span class=\"mono\">");
			html_esc(&b, PQgetvalue(r, i, 3));
			buf_puts(&b, " ");
			html_esc(&b, PQgetvalue(r, i, 4));
			buf_puts(&b, "</span><br>winner <strong>");
			html_esc(&b, PQgetvalue(r, i, 7));
			buf_puts(&b, "</strong> &middot; rule ");
			html_esc(&b, PQgetvalue(r, i, 8));
			buf_puts(&b, "\n<table><thead><tr><th>column</th><th>");
			html_esc(&b, PQgetvalue(r, i, 5));
			buf_puts(&b, " (target's version)");
			buf_puts(&b, "</th><th>");
			html_esc(&b, PQgetvalue(r, i, 6));
			buf_puts(&b, " (incoming version)</th></tr></thead><tbody>\n");
			if (PQgetisnull(r, i, 9))
				buf_printf(&b,
				    "<tr><td>(row)</td><td%s>%s</td><td%s>%s</td></tr>\n",
				    lw ? " class=\"win\"" : "",
				    PQgetvalue(r, i, 13)[0] == 't' ? "" : "deleted",
				    rw ? " class=\"win\"" : "",
				    PQgetvalue(r, i, 14)[0] == 't' ? "" : "deleted");
		}
		if (PQgetisnull(r, i, 9))
			continue;
		buf_puts(&b, "<tr><td class=\"mono\">");
		html_esc(&b, PQgetvalue(r, i, 9));
		buf_printf(&b, "</td><td class=\"mono%s%s\">",
		    PQgetvalue(r, i, 12)[0] == 't' ? " diff" : "", lw ? " win" : "");
		if (PQgetisnull(r, i, 10))
			buf_puts(&b, PQgetvalue(r, i, 13)[0] == 't' ? "" : "(deleted)");
		else
			html_esc(&b, PQgetvalue(r, i, 10));
		buf_printf(&b, "</td><td class=\"mono%s%s\">",
		    PQgetvalue(r, i, 12)[0] == 't' ? " diff" : "", rw ? " win" : "");
		if (PQgetisnull(r, i, 11))
			buf_puts(&b, PQgetvalue(r, i, 14)[0] == 't' ? "" : "(deleted)");
		else
			html_esc(&b, PQgetvalue(r, i, 11));
		buf_puts(&b, "</td></tr>\n");
	}
	if (last[0])
		buf_puts(&b, "</tbody></table></div>\n");
	PQclear(r);
	return send_page(q, MHD_HTTP_OK, "Conflicts", "conflicts", 1, &b);
}

#define QUARANTINE_SQL                                                                           \
	"SELECT id, sync, source || ' -> ' || target AS edge, schema_name || '.' || table_name " \
	"AS \"table\", pk::text AS key, reason, constraint_name, attempts, "                     \
	"to_char(first_at, 'YYYY-MM-DD HH24:MI:SS') AS first_at, "                               \
	"to_char(last_at, 'YYYY-MM-DD HH24:MI:SS') AS last_at, "                                 \
	"coalesce(resolution, 'retried every run') AS state, row_data::text AS incoming_row "    \
	"FROM repctl.quarantine WHERE resolved_at IS NULL AND ($1::text IS NULL OR sync = $1) "  \
	"ORDER BY id"

static enum MHD_Result
page_quarantine(struct rq *q, PGconn *meta)
{
	char err[ERRLEN];
	struct buf b = BUF_INIT;
	const char *p[1] = { param(q, "sync") };
	PGresult *r = db_query(meta, QUARANTINE_SQL, 1, p, err, sizeof(err));
	int i, j;

	if (r == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	buf_puts(&b,
	    "<h1>Quarantine</h1>\n<p class=\"muted\">Rows a target refused (a unique key "
	    "taken by another row, a check). They are retried every run. <em>Keep "
	    "incoming</em> deletes the target's colliding rows; <em>Keep existing</em> "
	    "deletes the incoming row on its source. Both ask for confirmation and show "
	    "what will be deleted first.</p>\n");
	if (PQntuples(r) == 0)
		buf_puts(&b, "<p class=\"muted\">Nothing is quarantined.</p>\n");
	for (i = 0; i < PQntuples(r); i++) {
		buf_puts(&b, "<div class=\"conflict\"><table><tbody>\n");
		for (j = 0; j < PQnfields(r); j++) {
			buf_puts(&b, "<tr><th>");
			html_esc(&b, PQfname(r, j));
			buf_puts(&b, "</th><td class=\"mono\">");
			html_esc(&b, PQgetisnull(r, i, j) ? "-" : PQgetvalue(r, i, j));
			buf_puts(&b, "</td></tr>\n");
		}
		buf_puts(&b, "</tbody></table>");
		if (q->level == L_ADMIN) {
			buf_puts(&b, "<div class=\"actions\"><a href=\"/quarantine/");
			html_esc(&b, PQgetvalue(r, i, 0));
			buf_puts(&b,
			    "?keep=incoming\">Keep incoming&hellip;</a> &middot; "
			    "<a href=\"/quarantine/");
			html_esc(&b, PQgetvalue(r, i, 0));
			buf_puts(&b, "?keep=existing\">Keep existing&hellip;</a></div>");
		}
		buf_puts(&b, "</div>\n");
	}
	PQclear(r);
	return send_page(q, MHD_HTTP_OK, "Quarantine", "quarantine", 1, &b);
}

/* The confirmation step: a dry run of the resolve, then the form that does it. */
static enum MHD_Result
page_quarantine_confirm(struct rq *q, PGconn *meta, const char *id)
{
	char err[ERRLEN], *text = NULL, *action;
	size_t tlen = 0;
	const char *keep = param(q, "keep");
	struct buf b = BUF_INIT, rows = BUF_INIT;
	FILE *out;
	int rc;

	if (q->level != L_ADMIN)
		return send_error(q, MHD_HTTP_FORBIDDEN, "resolving needs the admin token");
	out = open_memstream(&text, &tlen);
	if (out == NULL)
		return send_error(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	rc = quarantine_resolve(G.cfg, meta, id, keep, 1, out, &rows, err, sizeof(err));
	fclose(out);
	buf_puts(&b, "<h1>Resolve quarantined row ");
	html_esc(&b, id);
	buf_printf(&b, ": keep %s</h1>\n",
	    keep && strcmp(keep, "existing") == 0 ? "existing" : "incoming");
	if (rc != ACT_OK) {
		buf_puts(&b, "<pre class=\"err\">");
		html_esc(&b, err);
		buf_puts(&b, "</pre>\n<p><a href=\"/quarantine\">Back</a></p>\n");
		free(text);
		buf_free(&rows);
		return send_page(q,
		    rc == ACT_NOTFOUND      ? MHD_HTTP_NOT_FOUND
			: rc == ACT_INVALID ? MHD_HTTP_BAD_REQUEST
			: rc == ACT_REFUSED ? MHD_HTTP_CONFLICT
					    : MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Resolve", "quarantine", 0, &b);
	}
	buf_puts(&b, "<p>This is what it will do (a dry run: nothing was changed yet):</p>\n<pre>");
	html_esc(&b, text);
	buf_puts(&b, "</pre>\n<div class=\"actions\">");
	action = xasprintf("/api/v1/quarantine/%s/resolve", id);
	html_button(
	    &b, q, action, "Confirm: delete these rows", "danger", "keep", keep, "/quarantine");
	free(action);
	buf_puts(&b, " <a href=\"/quarantine\">Cancel</a></div>\n");
	free(text);
	buf_free(&rows);
	return send_page(q, MHD_HTTP_OK, "Resolve", "quarantine", 0, &b);
}

static enum MHD_Result
page_folders(struct rq *q, PGconn *meta)
{
	char err[ERRLEN];
	struct buf b = BUF_INIT;
	char *st = status_now(meta, NULL, err, sizeof(err));
	PGresult *f;
	int i;

	if (st == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	buf_puts(&b, "<h1>Folders</h1>\n");
	{
		const char *p[1] = { st };

		if (html_query_table(
			&b, meta, "SELECT " FOLDER_COLS, 1, p, "No folder.", err, sizeof(err)) < 0)
			goto fail;
	}
	f = db_query(
	    meta, "SELECT name FROM repctl.folder ORDER BY name", 0, NULL, err, sizeof(err));
	if (f == NULL)
		goto fail;
	for (i = 0; i < PQntuples(f); i++) {
		const char *p[1] = { PQgetvalue(f, i, 0) };

		buf_puts(&b, "<h2 id=\"f-");
		html_esc(&b, p[0]);
		buf_puts(&b, "\">Folder ");
		html_esc(&b, p[0]);
		buf_puts(&b, "</h2>\n");
		if (q->level == L_ADMIN) {
			char *a = xasprintf("/api/v1/folders/%s/sync", p[0]);

			buf_puts(&b, "<div class=\"actions\">");
			html_button(&b, q, a, "Sync folder now", NULL, NULL, NULL, NULL);
			buf_puts(&b, "</div>\n");
			free(a);
		}
		if (html_query_table(&b, meta,
			"SELECT node, path, type FROM repctl.folder_node WHERE folder = $1 ORDER BY ord, node",
			1, p, "No node.", err, sizeof(err)) < 0 ||
		    html_query_table(&b, meta,
			"SELECT id AS run, CASE WHEN ok THEN 'green' WHEN NOT ok THEN 'red' "
			"ELSE 'yellow' END AS _row, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS') AS "
			"started, round(extract(epoch FROM coalesce(ended_at, now()) - started_at)::numeric, 1) "
			"AS time_s, CASE WHEN ok THEN 'good' WHEN NOT ok THEN 'bad' ELSE 'running' END "
			"AS result, files, round(bytes / 1e6, 2) AS mb, round(wire_bytes / 1e6, 2) AS "
			"wire_mb, deleted, conflicts AS conflict_copies, error FROM repctl.folder_run "
			"WHERE folder = $1 ORDER BY id DESC LIMIT 10",
			1, p, "No run yet.", err, sizeof(err)) < 0) {
			PQclear(f);
			goto fail;
		}
	}
	PQclear(f);
	free(st);
	return send_page(q, MHD_HTTP_OK, "Folders", "folders", 1, &b);
fail:
	free(st);
	buf_free(&b);
	return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
}

static enum MHD_Result
page_login(struct rq *q, const char *problem)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "<h1>Log in</h1>\n");
	if (!G.tokens) {
		buf_puts(&b,
		    "<p>No token is configured: the console listens on loopback only and "
		    "needs no login.</p><p><a href=\"/\">Fleet</a></p>\n");
		return send_page(q, MHD_HTTP_OK, "Log in", NULL, 0, &b);
	}
	if (problem) {
		buf_puts(&b, "<p class=\"err\">");
		html_esc(&b, problem);
		buf_puts(&b, "</p>\n");
	}
	buf_puts(&b,
	    "<form class=\"login\" method=\"post\" action=\"/login\" data-plain>"
	    "<label>Token (http.token, or http.readonly_token to look only)"
	    "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" "
	    "autofocus></label><button>Log in</button></form>\n");
	return send_page(q, problem ? MHD_HTTP_UNAUTHORIZED : MHD_HTTP_OK, "Log in", NULL, 0, &b);
}

static enum MHD_Result
do_login(struct rq *q)
{
	const char *t = param(q, "token");
	struct MHD_Response *r;
	enum MHD_Result ret;
	char sess[160], *cookie;
	int level = L_NONE;

	if (!G.tokens)
		return send_redirect(q, "/");
	if (t && secret_eq(t, G.cfg->http_token))
		level = L_ADMIN;
	else if (t && secret_eq(t, G.cfg->http_readonly_token))
		level = L_READ;
	if (level == L_NONE) {
		/* no delay here: it would stall every client (one thread); tokens are long */
		log_warnx("failed login from a client");
		return page_login(q, "That token is not valid.");
	}
	session_make(level, sess, sizeof(sess));
	cookie = xasprintf("repctl_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
	    sess, SESSION_SECONDS, G.tls ? "; Secure" : "");
	r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(cookie);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	free(cookie);
	ret = MHD_queue_response(q->c, MHD_HTTP_SEE_OTHER, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
do_logout(struct rq *q)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE,
	    "repctl_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
	MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/login");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(q->c, MHD_HTTP_SEE_OTHER, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- /metrics ---- */

static const struct metric {
	const char *name, *type, *help;
} metrics[] = {
	{ "repctl_sync_lag_seconds", "gauge",
	    "How long the oldest change not yet applied to a target has waited (status lag_s)" },
	{ "repctl_sync_pending_rows", "gauge",
	    "Keys changed on a source and not yet applied to a target (status pending)" },
	{ "repctl_sync_last_good_run_timestamp_seconds", "gauge",
	    "When the last good run of the sync ended, seconds since the epoch" },
	{ "repctl_sync_runs_total", "counter", "Finished runs of the sync, by result" },
	{ "repctl_sync_rows_total", "counter", "Rows applied by the sync's runs, by operation" },
	{ "repctl_sync_conflicts_total", "counter", "Conflicts logged for the sync" },
	{ "repctl_sync_quarantined", "gauge", "Rows of the sync quarantined and not resolved" },
	{ "repctl_sync_up", "gauge", "1 when the sync's health is green, else 0" },
	{ "repctl_node_up", "gauge",
	    "1 when the node's last contact succeeded (no failure, circuit closed), else 0" },
	{ "repctl_node_clock_offset_seconds", "gauge",
	    "The node's clock minus the coordinator's, measured on connect" },
	{ "repctl_folder_files_total", "counter", "Files copied by the folder's runs" },
	{ "repctl_folder_bytes_total", "counter",
	    "Bytes of file data copied by the folder's runs" },
	{ "repctl_folder_conflict_copies", "gauge", "Conflict copies the folder's runs made" },
	{ "repctl_coordinator_rss_bytes", "gauge", "Resident memory of the coordinator process" },
	{ "repctl_coordinator_workers", "gauge",
	    "Child processes of the coordinator (runners, watcher, folder workers, console)" },
	{ NULL, NULL, NULL },
};

/* One row per sample: metric index, label 1 name and value, label 2 name and value, value. */
#define METRICS_SQL                                                                                 \
	"WITH st AS (SELECT $1::jsonb AS j), "                                                      \
	"s AS (SELECT x FROM st, jsonb_array_elements(j->'syncs') x), "                             \
	"n AS (SELECT x FROM st, jsonb_array_elements(j->'nodes') x) "                              \
	"SELECT 0, 'sync', x->>'name', NULL, NULL, (x->>'lag_s')::numeric::text FROM s "            \
	"  WHERE x->>'lag_s' IS NOT NULL "                                                          \
	"UNION ALL SELECT 1, 'sync', x->>'name', NULL, NULL, (x->>'pending')::bigint::text FROM s " \
	"  WHERE x->>'pending' IS NOT NULL "                                                        \
	"UNION ALL SELECT 2, 'sync', r.sync, NULL, NULL, "                                          \
	"  round(extract(epoch FROM max(r.ended_at))::numeric, 3)::text FROM repctl.run r "         \
	"  WHERE r.ok GROUP BY r.sync "                                                             \
	"UNION ALL SELECT 3, 'sync', y.name, 'result', v.res, coalesce((SELECT count(*) "           \
	"  FROM repctl.run r WHERE r.sync = y.name AND r.ended_at IS NOT NULL "                     \
	"  AND r.ok = (v.res = 'good')), 0)::text "                                                 \
	"  FROM repctl.sync y, (VALUES ('good'), ('bad')) v(res) "                                  \
	"UNION ALL SELECT 4, 'sync', y.name, 'op', v.op, coalesce((SELECT sum(CASE v.op "           \
	"  WHEN 'insert' THEN r.inserts WHEN 'update' THEN r.updates ELSE r.deletes END) "          \
	"  FROM repctl.run r WHERE r.sync = y.name), 0)::text "                                     \
	"  FROM repctl.sync y, (VALUES ('insert'), ('update'), ('delete')) v(op) "                  \
	"UNION ALL SELECT 5, 'sync', x->>'name', NULL, NULL, (x->>'conflicts')::bigint::text "      \
	"  FROM s "                                                                                 \
	"UNION ALL SELECT 6, 'sync', x->>'name', NULL, NULL, (x->>'quarantined')::bigint::text "    \
	"  FROM s "                                                                                 \
	"UNION ALL SELECT 7, 'sync', x->>'name', NULL, NULL, "                                      \
	"  CASE WHEN x->>'health' = 'green' THEN '1' ELSE '0' END FROM s "                          \
	"UNION ALL SELECT 8, 'node', x->>'node', NULL, NULL, "                                      \
	"  CASE WHEN x->>'circuit' = 'closed' AND (x->>'failures')::int = 0 "                       \
	"  AND x->>'last_contact' IS NOT NULL THEN '1' ELSE '0' END FROM n "                        \
	"UNION ALL SELECT 9, 'node', x->>'node', NULL, NULL, "                                      \
	"  ((x->>'clock_offset_ms')::numeric / 1000)::text FROM n "                                 \
	"  WHERE x->>'clock_offset_ms' IS NOT NULL "                                                \
	"UNION ALL SELECT 10, 'folder', f.name, NULL, NULL, coalesce((SELECT sum(files) "           \
	"  FROM repctl.folder_run r WHERE r.folder = f.name), 0)::text FROM repctl.folder f "       \
	"UNION ALL SELECT 11, 'folder', f.name, NULL, NULL, coalesce((SELECT sum(bytes) "           \
	"  FROM repctl.folder_run r WHERE r.folder = f.name), 0)::text FROM repctl.folder f "       \
	"UNION ALL SELECT 12, 'folder', f.name, NULL, NULL, coalesce((SELECT sum(conflicts) "       \
	"  FROM repctl.folder_run r WHERE r.folder = f.name), 0)::text FROM repctl.folder f "       \
	"ORDER BY 1, 3, 5"

/* A label value as the text format wants it: \, " and newline escaped. */
static void
label_esc(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(b, "\\\\");
		else if (*s == '"')
			buf_puts(b, "\\\"");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *s);
	}
}

/* The coordinator's RSS (bytes) and its children listed in <pid_file>.info. */
static void
coordinator_figures(long *rss, int *children)
{
	char path[64], line[256];
	long pages = 0, res = 0;
	FILE *fp;
	char *info = xasprintf("%s.info", G.cfg->pid_file);

	*rss = -1;
	*children = -1;
	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)getppid());
	fp = fopen(path, "r");
	if (fp) {
		if (fscanf(fp, "%ld %ld", &pages, &res) == 2)
			*rss = res * sysconf(_SC_PAGESIZE);
		fclose(fp);
	}
	fp = fopen(info, "r");
	if (fp) {
		*children = 0;
		while (fgets(line, sizeof(line), fp))
			if (strncmp(line, "child ", 6) == 0)
				(*children)++;
		fclose(fp);
	}
	free(info);
}

static enum MHD_Result
page_metrics(struct rq *q, PGconn *meta)
{
	char err[ERRLEN];
	char *st = status_now(meta, NULL, err, sizeof(err));
	const char *p[1] = { st };
	PGresult *r;
	struct buf b = BUF_INIT;
	int m, i = 0;
	long rss;
	int kids;

	if (st == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	r = db_query(meta, METRICS_SQL, 1, p, err, sizeof(err));
	free(st);
	if (r == NULL)
		return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	coordinator_figures(&rss, &kids);
	for (m = 0; metrics[m].name; m++) {
		buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
		    metrics[m].name, metrics[m].type);
		for (; i < PQntuples(r) && atoi(PQgetvalue(r, i, 0)) == m; i++) {
			if (PQgetisnull(r, i, 5) || PQgetisnull(r, i, 2))
				continue;
			buf_printf(&b, "%s{%s=\"", metrics[m].name, PQgetvalue(r, i, 1));
			label_esc(&b, PQgetvalue(r, i, 2));
			buf_puts(&b, "\"");
			if (!PQgetisnull(r, i, 3)) {
				buf_printf(&b, ",%s=\"", PQgetvalue(r, i, 3));
				label_esc(&b, PQgetvalue(r, i, 4));
				buf_puts(&b, "\"");
			}
			buf_printf(&b, "} %s\n", PQgetvalue(r, i, 5));
		}
		if (strcmp(metrics[m].name, "repctl_coordinator_rss_bytes") == 0 && rss >= 0)
			buf_printf(&b, "%s %ld\n", metrics[m].name, rss);
		if (strcmp(metrics[m].name, "repctl_coordinator_workers") == 0 && kids >= 0)
			buf_printf(&b, "%s %d\n", metrics[m].name, kids);
	}
	PQclear(r);
	return send_body(
	    q, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf_steal(&b), 0);
}

/* ---- the API ---- */

static unsigned
act_status(int rc)
{
	switch (rc) {
	case ACT_OK: return MHD_HTTP_OK;
	case ACT_INVALID: return MHD_HTTP_BAD_REQUEST;
	case ACT_NOTFOUND: return MHD_HTTP_NOT_FOUND;
	case ACT_REFUSED: return MHD_HTTP_CONFLICT;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* The answer to an action: JSON, or (a plain form post without JavaScript) a redirect back. */
static enum MHD_Result
action_done(struct rq *q, int rc, const char *err, char *json_ok)
{
	const char *back = param(q, "return_to");
	const char *accept = header(q, MHD_HTTP_HEADER_ACCEPT);

	if (rc == ACT_OK && back && back[0] == '/' && back[1] != '/' && back[1] != '\\' &&
	    strchr(back, '\r') == NULL && strchr(back, '\n') == NULL &&
	    (accept == NULL || strstr(accept, "application/json") == NULL)) {
		free(json_ok);
		return send_redirect(q, back);
	}
	if (rc != ACT_OK) {
		free(json_ok);
		return send_error(q, act_status(rc), "%s", err);
	}
	return send_json(q, MHD_HTTP_OK, json_ok);
}

static enum MHD_Result
api_sync_action(struct rq *q, PGconn *meta, const char *name, const char *what)
{
	char err[ERRLEN], *since = NULL;
	struct buf b = BUF_INIT;
	int rc;

	if (strcmp(what, "kick") == 0)
		rc = ctl_kick(G.cfg, meta, name, &since, err, sizeof(err));
	else
		rc = ctl_set_status(
		    meta, name, strcmp(what, "pause") == 0 ? "paused" : "active", err, sizeof(err));
	if (rc == ACT_OK) {
		buf_puts(&b, "{\"ok\": true, \"sync\": ");
		buf_json_str(&b, name);
		buf_puts(&b, ", \"action\": ");
		buf_json_str(&b, what);
		if (since) {
			buf_puts(&b, ", \"since\": ");
			buf_json_str(&b, since);
		}
		buf_printf(&b, ", \"message\": \"sync '%s' %s\"}", name,
		    strcmp(what, "kick") == 0        ? "kicked"
			: strcmp(what, "pause") == 0 ? "paused"
						     : "resumed");
		log_info("sync %s %s", name, what);
	}
	free(since);
	return action_done(q, rc, err, rc == ACT_OK ? buf_steal(&b) : (buf_free(&b), NULL));
}

static enum MHD_Result
api_folder_sync(struct rq *q, PGconn *meta, const char *name)
{
	char err[ERRLEN];
	int rc = ctl_folder_kick(G.cfg, meta, name, err, sizeof(err));
	struct buf b = BUF_INIT;

	if (rc == ACT_OK) {
		buf_puts(&b, "{\"ok\": true, \"folder\": ");
		buf_json_str(&b, name);
		buf_printf(&b, ", \"message\": \"folder '%s': sync requested\"}", name);
		log_info("folder %s sync requested", name);
	}
	return action_done(q, rc, err, rc == ACT_OK ? buf_steal(&b) : (buf_free(&b), NULL));
}

static enum MHD_Result
api_resolve(struct rq *q, PGconn *meta, const char *id)
{
	char err[ERRLEN], *text = NULL;
	size_t tlen = 0;
	const char *keep = param(q, "keep"), *dry = param(q, "dry_run");
	int isdry = dry && strcmp(dry, "0") != 0 && strcmp(dry, "false") != 0;
	struct buf rows = BUF_INIT, b = BUF_INIT;
	FILE *out = open_memstream(&text, &tlen);
	int rc;

	if (out == NULL)
		return send_error(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	if (keep == NULL) {
		fclose(out);
		free(text);
		return send_error(q, MHD_HTTP_BAD_REQUEST,
		    "keep is missing: keep=incoming (the refused row wins) or keep=existing (it is "
		    "dropped everywhere)");
	}
	rc = quarantine_resolve(G.cfg, meta, id, keep, isdry, out, &rows, err, sizeof(err));
	fclose(out);
	if (rc == ACT_OK) {
		buf_printf(&b, "{\"ok\": true, \"id\": %s, \"keep\": ", id);
		buf_json_str(&b, keep);
		buf_printf(&b,
		    ", \"dry_run\": %s, \"rows\": [%s], \"message\": ", isdry ? "true" : "false",
		    rows.data ? rows.data : "");
		buf_json_str(&b, text);
		buf_puts(&b, "}");
		if (!isdry)
			log_info("quarantined row %s resolved, keep=%s", id, keep);
	}
	free(text);
	buf_free(&rows);
	return action_done(q, rc, err, rc == ACT_OK ? buf_steal(&b) : (buf_free(&b), NULL));
}

/* ---- routing ---- */

#define MAXSEG 8

static int
split_path(const char *url, char *copy, size_t clen, char **seg)
{
	int n = 0;
	char *p, *save = NULL;

	snprintf(copy, clen, "%s", url);
	for (p = strtok_r(copy, "/", &save); p && n < MAXSEG; p = strtok_r(NULL, "/", &save))
		seg[n++] = p;
	if (p != NULL)
		return -1;
	return n;
}

static int
is_get(struct rq *q)
{
	return strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
}

/*
 * May this POST act?  A bearer admin token, or a login (admin) with its
 * CSRF token, or, with no token configured, a loopback client whose browser
 * form carries the CSRF token of its page (a client that is no browser sends
 * no Origin header and needs none).
 */
static enum MHD_Result
post_refused(struct rq *q, int *refused)
{
	const char *csrf = param(q, "csrf");

	*refused = 1;
	if (q->via_bearer) {
		if (q->level == L_ADMIN) {
			*refused = 0;
			return MHD_YES;
		}
		return send_error(q, MHD_HTTP_FORBIDDEN,
		    "the read-only token may not act; use the admin token (http.token)");
	}
	if (G.tokens) {
		if (q->level == L_NONE)
			return send_error(q, MHD_HTTP_UNAUTHORIZED,
			    "an action needs the admin token: Authorization: Bearer TOKEN (http.token), "
			    "or log in at /login");
		if (q->level != L_ADMIN)
			return send_error(q, MHD_HTTP_FORBIDDEN,
			    "logged in read-only: actions need the admin token");
		if (csrf == NULL || strlen(csrf) != strlen(q->csrf) ||
		    CRYPTO_memcmp(csrf, q->csrf, strlen(q->csrf)) != 0)
			return send_error(
			    q, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token: reload the page");
		*refused = 0;
		return MHD_YES;
	}
	if (!peer_loopback(q))
		return send_error(
		    q, MHD_HTTP_FORBIDDEN, "actions without a token are taken from loopback only");
	if (csrf != NULL || header(q, "Origin") != NULL) {
		if (csrf == NULL || strlen(csrf) != strlen(q->csrf) ||
		    CRYPTO_memcmp(csrf, q->csrf, strlen(q->csrf)) != 0)
			return send_error(q, MHD_HTTP_FORBIDDEN,
			    "a browser's action needs the CSRF token of the console's own page: reload it");
	}
	*refused = 0;
	return MHD_YES;
}

static enum MHD_Result
route(struct rq *q)
{
	char copy[1024], err[ERRLEN];
	char *seg[MAXSEG];
	int n, refused;
	PGconn *meta;
	enum MHD_Result ret;
	const char *ctype = header(q, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (strlen(q->url) >= sizeof(copy) || q->url[0] != '/')
		return send_error(q, MHD_HTTP_NOT_FOUND, "no such page");
	n = split_path(q->url, copy, sizeof(copy), seg);
	if (n < 0)
		return send_error(q, MHD_HTTP_NOT_FOUND, "no such page");
	if (G.tokens == 0 && !host_loopback(q))
		return send_error(q, MHD_HTTP_FORBIDDEN,
		    "this console has no token and answers only to a loopback Host (127.0.0.1, "
		    "localhost, [::1]); set http.token to reach it under another name");
	if (q->too_big)
		return send_error(
		    q, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %d bytes", BODY_MAX);
	if (q->body.len > 0) {
		if (ctype == NULL ||
		    strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0)
			return send_error(q, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			    "send parameters as application/x-www-form-urlencoded (curl -d "
			    "'keep=incoming') or in the query string");
		form_parse(q);
	}
	q->partial = header(q, "X-Repctl-Partial") != NULL;

	/* what needs no login */
	if (n == 2 && strcmp(seg[0], "static") == 0) {
		const char *t;

		if (!is_get(q))
			return send_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
		t = (strcmp(seg[1], "console.css") == 0 || strcmp(seg[1], "console.js") == 0)
		    ? web_file(seg[1])
		    : NULL;
		if (t == NULL)
			return send_error(q, MHD_HTTP_NOT_FOUND, "no such file");
		return send_body(q, MHD_HTTP_OK,
		    strstr(seg[1], ".css") ? "text/css; charset=utf-8"
					   : "text/javascript; charset=utf-8",
		    xstrdup(t), 1);
	}
	if (n == 1 && strcmp(seg[0], "login") == 0) {
		if (is_get(q))
			return page_login(q, NULL);
		if (strcmp(q->method, "POST") == 0)
			return do_login(q);
		return send_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST");
	}
	if (n == 1 && strcmp(seg[0], "logout") == 0) {
		if (strcmp(q->method, "POST") != 0)
			return send_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
		return do_logout(q);
	}
	if (q->bad_bearer)
		return send_error(q, MHD_HTTP_UNAUTHORIZED, "the bearer token is not valid");

	/* find the route, then check the method and who asks */
	{
		enum { R_NONE, R_PAGE, R_API_GET, R_POST, R_HEALTH } kind = R_NONE;
		int which = 0;

		if (n == 0) {
			kind = R_PAGE, which = 1;
		} else if (n == 1 && strcmp(seg[0], "healthz") == 0) {
			kind = R_HEALTH;
		} else if (n == 1 && strcmp(seg[0], "metrics") == 0) {
			kind = R_API_GET, which = 1;
		} else if (n == 2 && strcmp(seg[0], "sync") == 0 && name_ok(seg[1])) {
			kind = R_PAGE, which = 2;
		} else if (n == 1 && strcmp(seg[0], "conflicts") == 0) {
			kind = R_PAGE, which = 3;
		} else if (n == 1 && strcmp(seg[0], "quarantine") == 0) {
			kind = R_PAGE, which = 4;
		} else if (n == 2 && strcmp(seg[0], "quarantine") == 0 && digits_ok(seg[1])) {
			kind = R_PAGE, which = 5;
		} else if (n == 1 && strcmp(seg[0], "folders") == 0) {
			kind = R_PAGE, which = 6;
		} else if (n >= 3 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0) {
			if (n == 3 && strcmp(seg[2], "status") == 0)
				kind = R_API_GET, which = 2;
			else if (n == 3 && strcmp(seg[2], "conflicts") == 0)
				kind = R_API_GET, which = 3;
			else if (n == 3 && strcmp(seg[2], "quarantine") == 0)
				kind = R_API_GET, which = 4;
			else if (n == 3 && strcmp(seg[2], "health") == 0)
				kind = R_HEALTH;
			else if (n == 5 && strcmp(seg[2], "syncs") == 0 && name_ok(seg[3]) &&
			    strcmp(seg[4], "runs") == 0)
				kind = R_API_GET, which = 5;
			else if (n == 5 && strcmp(seg[2], "syncs") == 0 && name_ok(seg[3]) &&
			    (strcmp(seg[4], "kick") == 0 || strcmp(seg[4], "pause") == 0 ||
				strcmp(seg[4], "resume") == 0))
				kind = R_POST, which = 1;
			else if (n == 5 && strcmp(seg[2], "quarantine") == 0 && digits_ok(seg[3]) &&
			    strcmp(seg[4], "resolve") == 0)
				kind = R_POST, which = 2;
			else if (n == 5 && strcmp(seg[2], "folders") == 0 && name_ok(seg[3]) &&
			    strcmp(seg[4], "sync") == 0)
				kind = R_POST, which = 3;
		}
		if (kind == R_NONE)
			return send_error(q, MHD_HTTP_NOT_FOUND, "no such page: %s", q->url);
		if (kind == R_POST && strcmp(q->method, "POST") != 0)
			return send_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: use POST", q->url);
		if (kind != R_POST && !is_get(q))
			return send_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: use GET", q->url);
		if (kind == R_POST) {
			ret = post_refused(q, &refused);
			if (refused)
				return ret;
		} else if (kind != R_HEALTH && q->level == L_NONE) {
			if (kind == R_PAGE && !q->partial)
				return send_redirect(q, "/login");
			return send_error(q, MHD_HTTP_UNAUTHORIZED,
			    "this console needs a token: Authorization: Bearer TOKEN (http.token or "
			    "http.readonly_token)");
		}
		meta = meta_get(err, sizeof(err));
		if (meta == NULL && kind == R_HEALTH) {
			/* what status --health says then: unknown (3) */
			struct buf b = BUF_INIT;

			buf_puts(&b, "{\"health\": \"unknown\", \"exit\": 3");
			if (q->level != L_NONE) {
				char *l = xasprintf("unknown: %s", err);

				buf_puts(&b, ", \"line\": ");
				buf_json_str(&b, l);
				free(l);
			}
			buf_puts(&b, "}");
			return send_json(q, MHD_HTTP_SERVICE_UNAVAILABLE, buf_steal(&b));
		}
		if (meta == NULL)
			return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
		if (kind == R_HEALTH) {
			char line[1100];
			int h = status_health_eval(G.cfg, meta, NULL, line, sizeof(line));
			const char *word = h == 0 ? "green"
			    : h == 1              ? "yellow"
			    : h == 2              ? "red"
						  : "unknown";
			const char *ok = param(q, "accept");
			int good = h == 0 || (h == 1 && ok && strcmp(ok, "yellow") == 0);
			struct buf b = BUF_INIT;

			buf_printf(&b, "{\"health\": \"%s\", \"exit\": %d", word, h);
			if (q->level != L_NONE) {
				buf_puts(&b, ", \"line\": ");
				buf_json_str(&b, line);
			}
			buf_puts(&b, "}");
			return send_json(
			    q, good ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, buf_steal(&b));
		}
		if (kind == R_PAGE) {
			switch (which) {
			case 1: return page_fleet(q, meta);
			case 2: return page_sync(q, meta, seg[1]);
			case 3: return page_conflicts(q, meta);
			case 4: return page_quarantine(q, meta);
			case 5: return page_quarantine_confirm(q, meta, seg[1]);
			default: return page_folders(q, meta);
			}
		}
		if (kind == R_API_GET) {
			char *js = NULL;
			int rc = ACT_OK;

			switch (which) {
			case 1: return page_metrics(q, meta);
			case 2:
				js = status_now(meta, NULL, err, sizeof(err));
				rc = js ? ACT_OK : ACT_ERROR;
				break;
			case 3: {
				const char *lim = param(q, "limit");
				long l = 0;

				if (lim && (!digits_ok(lim) || (l = atol(lim)) < 1))
					return send_error(q, MHD_HTTP_BAD_REQUEST,
					    "limit=%s: give a positive number", lim);
				rc = conflicts_json(meta, param(q, "sync"), param(q, "table"),
				    param(q, "since"), l, &js, err, sizeof(err));
				if (rc != ACT_OK && invalid_input())
					return send_error(q, MHD_HTTP_BAD_REQUEST, "%s", err);
				break;
			}
			case 4: {
				const char *p[1] = { param(q, "sync") };
				char *sql =
				    xasprintf("SELECT coalesce(json_agg(t), '[]') FROM (%s) t",
					QUARANTINE_SQL);

				js = db_value(meta, sql, 1, p, err, sizeof(err));
				free(sql);
				rc = js ? ACT_OK : ACT_ERROR;
				break;
			}
			default: {
				const char *p[2] = { seg[3], param(q, "limit") };

				js = db_value(meta,
				    "SELECT coalesce(json_agg(t ORDER BY t.id DESC), '[]') FROM ("
				    "SELECT id, started_at, ended_at, ok, inserts, updates, deletes, "
				    "conflicts, edges_ok, edges_failed, warning, error FROM repctl.run "
				    "WHERE sync = $1 ORDER BY id DESC LIMIT coalesce($2::int, 100)) t",
				    2, p, err, sizeof(err));
				rc = js ? ACT_OK : ACT_ERROR;
				if (rc != ACT_OK && invalid_input())
					return send_error(q, MHD_HTTP_BAD_REQUEST, "%s", err);
				break;
			}
			}
			if (rc != ACT_OK)
				return send_error(q, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
			return send_json(q, MHD_HTTP_OK, js);
		}
		/* R_POST */
		if (which == 1)
			return api_sync_action(q, meta, seg[3], seg[4]);
		if (which == 2)
			return api_resolve(q, meta, seg[3]);
		return api_folder_sync(q, meta, seg[3]);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct rq *q = *con_cls;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (q == NULL) {
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		q = xcalloc(1, sizeof(*q));
		q->c = c;
		*con_cls = q;
		if (cl && strtoull(cl, NULL, 10) > BODY_MAX)
			q->too_big = 1; /* answered at the end; the body is not kept */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!q->too_big && q->body.len + *upload_data_size <= BODY_MAX)
			buf_add(&q->body, upload_data, *upload_data_size);
		else
			q->too_big = 1;
		*upload_data_size = 0;
		return MHD_YES;
	}
	q->method = method;
	q->url = url;
	authenticate(q);
	ret = route(q);
	/* a metadata connection that broke is reopened by the next request */
	if (G.meta && PQstatus(G.meta) != CONNECTION_OK) {
		db_close(G.meta);
		G.meta = NULL;
	}
	return ret;
}

static void
on_completed(
    void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	rq_free(*con_cls);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("%s", msg);
}

/* ---- the pending counter (a helper process) ---- */

static void
helper_main(int fd, long console)
{
	char err[ERRLEN];
	PGconn *meta = NULL;

	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		_exit(1);
	log_set_context("console pending");
	for (;;) {
		char *pend, *line;
		int i;

		if (meta == NULL || PQstatus(meta) != CONNECTION_OK) {
			db_close(meta);
			meta = meta_connect(G.cfg, err, sizeof(err));
		}
		if (meta != NULL) {
			pend = status_pending_json(G.cfg, meta, NULL);
			line = xasprintf("%s\n", pend);
			if (write(fd, line, strlen(line)) < 0)
				_exit(0);
			free(line);
			free(pend);
		}
		for (i = 0; i < PENDING_EVERY * 10; i++) {
			usleep(100000);
			if ((long)getppid() != console)
				_exit(0);
		}
	}
}

static void
on_term(int sig)
{
	(void)sig;
	console_stop = 1;
}

int
console_main(struct config *cfg)
{
	char err[ERRLEN];
	struct listen_addr la;
	struct sigaction sa;
	struct MHD_Daemon *d;
	unsigned flags;
	char *cert = NULL, *key = NULL;
	int pfd[2], rc = 0;
	struct buf line = BUF_INIT;
	long parent = (long)getppid(), parent_self = (long)getpid();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	log_set_context("console");
	db_set_stop_flag(&console_stop);
	G.cfg = cfg;
	G.tokens = cfg->http_token[0] || cfg->http_readonly_token[0];
	G.pending = xstrdup("{}");
	/* its own connections give up sooner than a runner's */
	if (cfg->connect_timeout > 5)
		cfg->connect_timeout = 5;
	{
		struct db_timeouts t = { cfg->tcp_keepalives_idle, cfg->tcp_keepalives_interval,
			cfg->tcp_keepalives_count, cfg->tcp_user_timeout, CONSOLE_STMT_TIMEOUT };

		db_set_timeouts(&t);
	}
	if (console_check_config(cfg, err, sizeof(err)) < 0 ||
	    listen_parse(cfg->http_listen, &la, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (RAND_bytes(G.key, sizeof(G.key)) != 1) {
		log_error("no random bytes for the session key");
		return 1;
	}
	if (cfg->http_tls_cert[0]) {
		cert = read_file(cfg->http_tls_cert, err, sizeof(err));
		key = cert ? read_file(cfg->http_tls_key, err, sizeof(err)) : NULL;
		if (key == NULL) {
			log_error("%s", err);
			free(cert);
			return 1;
		}
		G.tls = 1;
	}
	/* the pending counter, before any thread exists */
	if (pipe(pfd) < 0) {
		log_warn("pipe");
		return 1;
	}
	G.helper = fork();
	if (G.helper == 0) {
		close(pfd[0]);
		helper_main(pfd[1], parent_self);
		_exit(0);
	}
	close(pfd[1]);
	if (G.helper < 0) {
		log_warn("fork");
		close(pfd[0]);
		return 1;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (la.v6 ? MHD_USE_IPv6 : 0) |
	    (G.tls ? MHD_USE_TLS : 0);
	/* poll(), level-triggered: at most CONN_MAX sockets, and a client that half-closes
	 * in the middle of its request is seen at once (with epoll it was only dropped at
	 * the connection timeout) */
	if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
		flags |= MHD_USE_POLL;
	d = G.tls
	    ? MHD_start_daemon(flags, la.port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
		  (struct sockaddr *)&la.ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONN_MAX,
		  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)CONN_PER_IP,
		  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT,
		  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
		  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_EXTERNAL_LOGGER,
		  mhd_log, NULL, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
		  MHD_OPTION_END)
	    : MHD_start_daemon(flags, la.port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
		  (struct sockaddr *)&la.ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONN_MAX,
		  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)CONN_PER_IP,
		  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT,
		  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
		  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_EXTERNAL_LOGGER,
		  mhd_log, NULL, MHD_OPTION_END);
	if (d == NULL) {
		log_error("cannot listen on %s (http.listen): %s; another process may hold "
			  "the port",
		    cfg->http_listen, strerror(errno));
		kill(G.helper, SIGTERM);
		waitpid(G.helper, NULL, 0);
		close(pfd[0]);
		free(cert);
		free(key);
		return 1;
	}
	log_info("console listening on %s://%s (%s)", G.tls ? "https" : "http", cfg->http_listen,
	    G.tokens ? "token required" : "loopback, no token");
	while (!console_stop) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		char chunk[4096];
		ssize_t got;

		if ((long)getppid() != parent) {
			log_warnx("the coordinator is gone: exiting");
			break;
		}
		if (poll(&p, 1, 500) <= 0)
			continue;
		got = read(pfd[0], chunk, sizeof(chunk));
		if (got <= 0) {
			log_warnx("the pending counter exited: restarting the console");
			rc = 1;
			break;
		}
		buf_add(&line, chunk, (size_t)got);
		for (;;) {
			char *nl = line.data ? memchr(line.data, '\n', line.len) : NULL;
			char *one;

			if (nl == NULL)
				break;
			one = xstrndup(line.data, (size_t)(nl - line.data));
			pthread_mutex_lock(&G.mu);
			free(G.pending);
			G.pending = one;
			pthread_mutex_unlock(&G.mu);
			line.len -= (size_t)(nl + 1 - line.data);
			memmove(line.data, nl + 1, line.len);
			line.data[line.len] = '\0';
		}
		if (line.len > 8 * 1024 * 1024)
			buf_reset(&line);
	}
	MHD_stop_daemon(d);
	kill(G.helper, SIGTERM);
	waitpid(G.helper, NULL, 0);
	close(pfd[0]);
	buf_free(&line);
	db_close(G.meta);
	free(G.pending);
	free(cert);
	free(key);
	log_info("console stopped");
	return rc;
}
