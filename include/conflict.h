/*
 * conflict.h - the conflict decision: a pure function of two row versions
 * and the sync's strategy.  No I/O, no clock, no notion of which side is
 * the target: decide(x, y) and decide(y, x) pick the same version, so every
 * edge, in either direction and at any moment, reaches the same decision.
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

/* The type of the conflict column, which says how its values compare. */
enum cc_kind {
	CC_TIME,   /* timestamp with time zone: epoch seconds, comparable with change times */
	CC_NAIVE,  /* timestamp without time zone or date: nominal epoch seconds, zone unknown */
	CC_NUMBER, /* integer/numeric version column: not a time, never clamped */
};

struct row_version {
	const char *node; /* the origin: the node that made this version */
	int deleted;
	int has_value;      /* the conflict column exists and is not NULL */
	double value;       /* its value (epoch seconds for times) */
	double changed_at;  /* change time at the origin, epoch seconds */
	int rank;           /* the origin's rank (smallest dbs= position in the herd's syncs) */
	const char *digest; /* the row's content (md5 of its text); "" or NULL for a delete */
};

struct strategy {
	enum strategy_kind kind;
	enum cc_kind cc;     /* how the conflict column's values compare */
	double future_limit; /* seconds; a value beyond its own change time + this is not trusted */
};

/* Slack for a timestamp without time zone, whose zone is unknown (UTC-12 .. UTC+14). */
#define CC_NAIVE_SLACK (14.0 * 3600.0)

struct decision {
	enum conflict_type type;
	enum resolution res;
	const char *rule; /* static text: why ("latest: greater conflict column") */
	int clamped;      /* a value in the future made both compete with change times */
	int same;         /* both live with the same content: nothing to decide or log */
	/*
	 * delete/delete or same content: nothing is written but the vectors are
	 * merged, and the merged version is named by one of the two (its dot,
	 * origin and change time, which later versions are judged against).
	 * 1: the local version's, 0: the remote's; the one the strategy keeps
	 * (skip and abort: as latest), so the same version on every edge.
	 */
	int merge_local;
};

extern const char *const strategy_names[];
extern const char *const conflict_type_names[];
extern const char *const resolution_names[];

/* Native strategy name -> kind; -1 when unknown. */
int strategy_parse(const char *name);

/*
 * Decide a true conflict (the versions are concurrent) between the target's
 * version (local) and the incoming one (remote).  Always fills out; returns
 * 0.  The winner depends only on the two versions (content, origin, origin's
 * rank, change time) and the strategy, never on which one is local: ties
 * fall back to the change time, then the origin's name, then the content.
 */
int conflict_decide(const struct row_version *local, const struct row_version *remote,
    const struct strategy *s, struct decision *out);

#endif
