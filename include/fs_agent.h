/*
 * fs_agent.h - `repctl agent`: the node side of the file sync, speaking the
 * framed protocol on stdin/stdout (over an SSH exec channel, or pipes for
 * the coordinator's own node).
 */
#ifndef REPCTL_FS_AGENT_H
#define REPCTL_FS_AGENT_H

/*
 * Serve requests on rfd/wfd until F_BYE or EOF.  root_limit (--root): when
 * not NULL, every folder path the coordinator names must be this directory
 * or below it.  Returns the exit status.
 */
int agent_serve(int rfd, int wfd, const char *root_limit);

/* Escape / unescape a field (tab, newline, backslash) for the text payloads. */
struct buf;
void field_put(struct buf *b, const char *s);
/* Split payload into at most max tab-separated fields, unescaping each (malloc'ed). */
int fields_split(const char *payload, size_t len, char **out, int max);
void fields_free(char **f, int n);

#endif
