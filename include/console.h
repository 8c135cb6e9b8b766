/*
 * console.h - the web console, its JSON API and /metrics (console.c): an
 * HTTP server in its own process under the coordinator, started when
 * http.listen is set.
 */
#ifndef REPCTL_CONSOLE_H
#define REPCTL_CONSOLE_H

#include <stddef.h>

struct config;

/*
 * Check the http.* keys before the coordinator starts: the address parses,
 * an address beyond loopback has http.token, tokens are long enough,
 * http.tls_cert and http.tls_key come together and are readable, and this
 * libmicrohttpd can do TLS when asked to.  0, or -1 with err (what, where,
 * how to fix).  Nothing to check (0) when http.listen is empty.
 */
int console_check_config(const struct config *cfg, char *err, size_t errlen);

/*
 * The console process's loop (a child of the coordinator, like the
 * watcher): serve until SIGTERM or the coordinator is gone.  The exit
 * status: 0 stopped, 1 could not listen (the coordinator restarts it).
 */
int console_main(struct config *cfg);

#endif
