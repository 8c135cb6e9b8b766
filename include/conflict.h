/*
 * conflict.h - the conflict decision: a pure function of two row versions
 * and the sync's strategy.  No I/O, no clock (the caller passes "now").
 */
#ifndef REPCTL_CONFLICT_H
#define REPCTL_CONFLICT_H

/* What the user configured. */
enum strategy_kind {
	STRAT_LATEST,
	STRAT_FIRST,
	STRAT_SOURCE,
	STRAT_TARGET,
	STRAT_SKIP,
	STRAT_ABORT,
};

/* What happened. */
enum conflict_type {
	CONFLICT_UPDATE_UPDATE, /* both changed the row */
	CONFLICT_UPDATE_DELETE, /* local changed it, remote deleted it */
	CONFLICT_DELETE_UPDATE, /* local deleted it, remote changed it */
	CONFLICT_DELETE_DELETE, /* both deleted it: same outcome either way */
};

/* What was decided. */
enum resolution {
	RES_REMOTE, /* apply the incoming version */
	RES_LOCAL,  /* keep the target's version (and send it back) */
	RES_SKIP,   /* apply nothing; leave both as they are (logged) */
	RES_ABORT,  /* stop the run with an error */
};

struct row_version {
	const char *node; /* the node whose change this is (origin) */
	int deleted;
	int has_value;     /* the conflict column exists and is not NULL */
	double value;      /* its value (epoch seconds for times) */
	double changed_at; /* change time at the origin, epoch seconds */
	int rank;          /* position of the node holding it in the sync's dbs= list */
};

struct strategy {
	enum strategy_kind kind;
	double now;          /* epoch seconds, from the caller */
	double future_limit; /* seconds; values beyond now + this are not trusted */
};

struct decision {
	enum conflict_type type;
	enum resolution res;
	const char *rule; /* static text: why ("latest: greater conflict column") */
	int clamped;      /* a value in the future was replaced by its change time */
};

extern const char *const strategy_names[];
extern const char *const conflict_type_names[];
extern const char *const resolution_names[];

/* Native strategy name -> kind; -1 when unknown. */
int strategy_parse(const char *name);

/*
 * Decide a true conflict (the versions are concurrent) between the target's
 * version (local) and the incoming one (remote).  Always fills out; returns
 * 0.  Ties are broken by node name (the smaller name wins) so that every
 * node reaches the same decision.
 */
int conflict_decide(const struct row_version *local, const struct row_version *remote,
    const struct strategy *s, struct decision *out);

#endif
