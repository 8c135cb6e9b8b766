/*
 * keyseq.h - primary-key columns that take their values from a sequence
 * (serial, bigserial, DEFAULT nextval(...), identity columns).
 *
 * Each node's sequence counts on its own, so two nodes both hand out id 42
 * and one row overwrites the other.  `add sync` warns and `validate`
 * reports such keys unless the nodes' sequences are partitioned (the same
 * INCREMENT BY on every node, a distinct residue per node), which
 * `repctl partition sequences SYNC` sets up.
 */
#ifndef REPCTL_KEYSEQ_H
#define REPCTL_KEYSEQ_H

#include <libpq-fe.h>
#include <stddef.h>

/* One sequence-backed key column of a table on one node. */
struct keyseq {
	char *node;
	char *schema, *table, *column; /* the table and its key column */
	char *seq_schema, *seq_name;   /* the sequence */
	int identity;                  /* identity column (else a DEFAULT nextval) */
	long long increment, min_value, max_value;
	long long last_value; /* as stored in the sequence */
	int is_called;        /* last_value was handed out (next = last + increment) */
};

struct keyseq_set {
	struct keyseq *k;
	int n;
};

/*
 * Append to out the sequence-backed key columns of the given tables of
 * node (reached by c), with their sequences' state.  0, or -1 with err.
 */
int keyseq_find(PGconn *c, const char *node, char *const *schemas, char *const *tables, int ntables,
    struct keyseq_set *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reread one sequence's increment, bounds, last value (in the caller's transaction). */
int keyseq_read(PGconn *c, struct keyseq *k, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The next value the sequence will hand out. */
long long keyseq_next(const struct keyseq *k);

void keyseq_set_free(struct keyseq_set *s);

/*
 * Group the columns by table and column and call fn once for every one
 * whose sequences are not partitioned across the nodes that have it (two or
 * more nodes, not all the same INCREMENT BY, or two nodes handing out the
 * same residue).  what: "table public.users: key column id ..." naming the
 * table, the column, the sequence and the nodes, without a hint.  Returns
 * the number of hazards.
 */
int keyseq_hazards(const struct keyseq_set *s, void (*fn)(const char *what, void *ud), void *ud);

/*
 * The sequence-backed key columns of every herd table of every node of
 * sync.  Node connections come from get(ud, node), which returns NULL for
 * an unreachable node (skipped; the getter reports it).  With skipped not
 * NULL, a node whose sequences cannot be read is skipped too and its error
 * added to *skipped (one line per node, NULL when none; free()); without,
 * it is an error.  0 or -1 with err.
 */
int keyseq_collect_sync(PGconn *meta, const char *sync, PGconn *(*get)(void *ud, const char *node),
    void *ud, struct keyseq_set *out, char **skipped, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- partitioning (`repctl partition sequences`): pure arithmetic ---- */

/* The first value >= from with value = r (mod step); step > 0, any sign of from and r. */
long long keyseq_first_at_or_above(long long from, long long r, long long step);

/*
 * Give each of n nodes a residue 1..step.  residue[i]: in, the residue the
 * node has recorded (0: none); out, its residue.  taken[1..step]: residues
 * held by nodes outside these n (updated as residues are given).  A
 * recorded residue is kept when nobody else holds it (the first node in
 * order wins it); a node without gets i + 1 when free, else the smallest
 * free residue.  -1 when every node has one, else the index of the first
 * node left without (every residue taken).
 */
int keyseq_assign_residues(int n, int *residue, char *taken, int step);

/*
 * Where a node's sequence goes when partitioned with (residue, step):
 * *start, its START WITH (the first value of its class at or above both
 * its MINVALUE and the residue) and *next, its RESTART WITH: the sequence's
 * own next value cur when it is already stepped by step, above high (the
 * largest id in use for the column anywhere) and in its class (a rerun
 * changes nothing), else the first value of its class above high; never
 * below *start.
 */
void keyseq_plan(long long high, long long cur, long long old_increment, long long min_value,
    int residue, int step, long long *start, long long *next);

#endif
