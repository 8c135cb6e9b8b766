/*
 * cmd.h - the command handlers named in the grammar table (cli.c).
 *
 * Each returns the process exit status: 0 on success, 1 on a user or
 * server error (already printed to stderr with what/where/how to fix),
 * other values where the command documents them (validate, status).
 */
#ifndef REPCTL_CMD_H
#define REPCTL_CMD_H

struct cli_ctx;
struct args;

#define CMD_HANDLER(name) int name(struct cli_ctx *ctx, struct args *args)

CMD_HANDLER(cmd_help);
CMD_HANDLER(cmd_version);
CMD_HANDLER(cmd_config);
CMD_HANDLER(cmd_install);
CMD_HANDLER(cmd_add_database);
CMD_HANDLER(cmd_add_table);
CMD_HANDLER(cmd_add_all_tables);
CMD_HANDLER(cmd_add_herd);
CMD_HANDLER(cmd_add_sync);
CMD_HANDLER(cmd_remove_table);
CMD_HANDLER(cmd_remove_database);
CMD_HANDLER(cmd_remove_herd);
CMD_HANDLER(cmd_remove_sync);
CMD_HANDLER(cmd_list_databases);
CMD_HANDLER(cmd_list_herds);
CMD_HANDLER(cmd_list_tables);
CMD_HANDLER(cmd_list_syncs);
CMD_HANDLER(cmd_update_database);
CMD_HANDLER(cmd_update_sync);
CMD_HANDLER(cmd_validate);
CMD_HANDLER(cmd_status);
CMD_HANDLER(cmd_onboard);
CMD_HANDLER(cmd_offboard);
CMD_HANDLER(cmd_client_kit);
CMD_HANDLER(cmd_run);
CMD_HANDLER(cmd_partition_sequences);
CMD_HANDLER(cmd_compare);
CMD_HANDLER(cmd_repair);
CMD_HANDLER(cmd_conflicts_resolve);
CMD_HANDLER(cmd_agent);
CMD_HANDLER(cmd_add_folder);
CMD_HANDLER(cmd_remove_folder);
CMD_HANDLER(cmd_list_folders);
CMD_HANDLER(cmd_sync_folder);
CMD_HANDLER(cmd_start);
CMD_HANDLER(cmd_stop);
CMD_HANDLER(cmd_reload);
CMD_HANDLER(cmd_kick);
CMD_HANDLER(cmd_pause);
CMD_HANDLER(cmd_resume);
CMD_HANDLER(cmd_conflicts);
CMD_HANDLER(cmd_keygen);
CMD_HANDLER(cmd_trust);

/*
 * After a change to the syncs or folders: a running coordinator (wherever
 * it runs) is told to reload, so the change takes effect without a
 * `repctl reload`; says so on stdout.  Nothing when none runs.
 */
void cmd_tell_reload(struct cli_ctx *ctx);

/* Print an error for the user (what, where, how to fix) to stderr. */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A failed lookup of a sync, folder or node (kind) by name: err when the
 * metadata database could not be asked (not NULL), else "no KIND 'NAME'"
 * with the hint of the command that lists them.
 */
void cmd_lookup_error(const char *kind, const char *name, const char *err);
/* Ask QUESTION on the terminal; 1 when the answer is y or yes (0 at end of input). */
int cmd_confirm(const char *question);

#endif
