/*
 * actions.h - what the CLI and the web console (console.c) both do, so that
 * the two can never disagree: the status and conflict reports and the
 * actions (kick, pause, resume, folder sync, quarantine resolve).
 *
 * The CLI handlers (cmd_status.c, cmd_control.c, cmd_quarantine.c) parse
 * their arguments, call these and print; the console calls the same
 * functions and answers HTTP.  None of them prints or exits; each takes the
 * configuration and an open metadata connection from its caller, which
 * keeps owning both.  Strings returned through char ** are the caller's to
 * free().
 */
#ifndef REPCTL_ACTIONS_H
#define REPCTL_ACTIONS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

struct config;
struct buf;

/* What an action came to: the CLI exits 1 on anything but ACT_OK, the console
 * answers 200, 400, 404, 409 or 500. */
enum act_rc {
	ACT_OK = 0,
	ACT_INVALID = 1,  /* a bad argument (keep=..., an id that is not a number) */
	ACT_NOTFOUND = 2, /* no such sync, folder or quarantined row */
	ACT_REFUSED = 3,  /* valid, but not now: no coordinator, resolved already ... */
	ACT_ERROR = -1,   /* a server error (err) */
};

/* ---- status.c ---- */

enum health { H_GREEN = 0, H_YELLOW = 1, H_RED = 2, H_UNKNOWN = 3 };

/* "WORD: reason" into line as exactly one line (whitespace folded, capped); returns h. */
int health_format(char *line, size_t linelen, enum health h, const char *msg);

/*
 * The rows of `repctl status`'s tables.  syncs: params are only (NULL: all),
 * coordinator running ("true"/"false"), status_pending_json's answer, the
 * default interval in seconds; nodes: the clock-skew warning threshold in
 * ms.  NULL with err on failure.
 */
PGresult *status_syncs_query(PGconn *meta, const char *const params[4], char *err, size_t errlen);
PGresult *status_nodes_query(PGconn *meta, const char *warn_ms, char *err, size_t errlen);
PGresult *status_folders_query(PGconn *meta, char *err, size_t errlen);

/*
 * {"sync": {"pending": N}} or {"sync": {"pending": null, "error": "..."}}
 * for every sync not inactive (only: that one), counted on the sources
 * through a pool of node connections (each bounded by connect_timeout and
 * statement_timeout).
 */
char *status_pending_json(const struct config *cfg, PGconn *meta, const char *only);

/*
 * The object `status --json` prints: coordinator, syncs, nodes, folders.
 * pending: status_pending_json's answer ("{}": unknown, null figures).
 * ACT_OK with *out, else ACT_ERROR with err.
 */
int status_json(const struct config *cfg, PGconn *meta, const char *only, const char *pending,
    char **out, char *err, size_t errlen);

/*
 * The verdict of `status --health` (it contacts no node): its exit status
 * (0 green, 1 yellow, 2 red, 3 unknown) and its one line ("green: 2 syncs
 * healthy (coordinator ...)") into line.
 */
int status_health_eval(
    const struct config *cfg, PGconn *meta, const char *only, char *line, size_t linelen);

/* ---- cmd_control.c ---- */

/*
 * `conflicts --json`: the resolved conflicts as a JSON array, oldest first;
 * sync, table ("name" or "schema.name"), since (a timestamptz) filter when
 * not NULL; limit > 0 keeps only the newest limit rows.
 */
int conflicts_json(PGconn *meta, const char *sync, const char *table, const char *since, long limit,
    char **out, char *err, size_t errlen);

/*
 * kick: wake SYNC in the running coordinator.  *since (when not NULL) gets
 * the metadata database's time before the kick, for `kick --wait` to find
 * the run it caused.
 */
int ctl_kick(const struct config *cfg, PGconn *meta, const char *sync, char **since, char *err,
    size_t errlen);
/* pause / resume: status "paused" or "active", and tell the coordinator. */
int ctl_set_status(PGconn *meta, const char *sync, const char *status, char *err, size_t errlen);
/* Wake FOLDER's worker in the running coordinator ("folder:NAME"). */
int ctl_folder_kick(
    const struct config *cfg, PGconn *meta, const char *folder, char *err, size_t errlen);

/* ---- cmd_quarantine.c ---- */

/*
 * conflicts resolve ID keep=incoming|existing [--dry-run]: settle a
 * quarantined row.  What it did (or would do) goes to out as the text the
 * CLI prints; when rows is not NULL the rows deleted (or that would be) are
 * appended to it as JSON objects {"node", "key", "row"} separated by
 * commas.  ACT_OK; otherwise err says why (ACT_ERROR: nothing was changed).
 */
int quarantine_resolve(const struct config *cfg, PGconn *meta, const char *id, const char *keep,
    int dry, FILE *out, struct buf *rows, char *err, size_t errlen);

#endif
