/*
 * onboard.h - helpers shared by `onboard`/`offboard` (cmd_onboard.c) and
 * `client-kit` (cmd_kit.c): how the coordinator is seen from a client,
 * and the pg_hba.conf line that lets it in.
 */
#ifndef REPCTL_ONBOARD_H
#define REPCTL_ONBOARD_H

/*
 * The local address this host uses to reach host:port (the kernel's route
 * choice, found with a connected UDP socket: nothing is sent), as text
 * ("10.8.0.1", "fd00::1").  This is how the client sees the coordinator
 * unless a NAT sits between them.  malloc'ed (free()), NULL when the host
 * does not resolve or has no route.
 */
char *onboard_source_addr(const char *host, const char *port);

/*
 * "host DBNAME USER ADDR/32 scram-sha-256" (/128 for IPv6): the pg_hba.conf
 * line that lets the coordinator, seen as addr, into a client.  Names are
 * double-quoted when pg_hba.conf needs it.  malloc'ed (free()).
 */
char *onboard_hba_line(const char *dbname, const char *user, const char *addr);

#endif
