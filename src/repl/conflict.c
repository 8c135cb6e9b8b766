/*
 * conflict.c - decide who wins a true conflict.
 *
 * Causality (vv.c) has already said the two versions are concurrent; the
 * sync's strategy picks the winner here.  The rule is a deterministic
 * function of the two versions, the same whichever of them is local, on
 * every edge, in either direction and at any moment (two runs deciding the
 * same conflict at once on two nodes must keep the same version, or the
 * merged vectors make the difference permanent):
 *
 *  - latest/first: a value of the conflict column is trusted unless it
 *    lies further in the future than clock.future_limit past the version's
 *    own change time (plus 14 hours for a timestamp without time zone,
 *    whose zone is unknown): a property of the version, not of the moment
 *    of the decision.  A timestamptz column holds instants: each version
 *    competes with its trusted value, or (a delete, a NULL, an untrusted
 *    value) with its change time at the origin.  Any other type (timestamp
 *    without time zone, date, a number) is compared in its own domain when
 *    both versions have trusted values; otherwise both compete with their
 *    change times, which are always comparable (never a naive local time
 *    against an instant).  Ties: the change time, then the origin's name
 *    (the smaller wins).
 *  - source/target: the origin's rank (the smallest position of that node
 *    in the dbs= lists of the herd's syncs): source keeps the lower, target
 *    the higher; equal ranks fall back to the origin's name.
 *  - a last tie (same origin, same times) is broken by the content digest.
 *
 * Two live versions with the same content, or two deletes, are not a
 * conflict: the vectors are merged and nothing is logged.  The merged
 * version is still named after one of the two (merge_local), and that must
 * be the one the strategy keeps: a later version that has seen only the
 * other one is then decided against it as a conflict.  Named after the
 * incoming one whatever it was, a node's own delete merged into a relayed
 * delete vanished when a later edit of the relayed one arrived (that edit
 * had seen the name, not the local delete, and was taken for newer).
 */
#include <string.h>

#include "conflict.h"

const char *const strategy_names[] = {
	[STRAT_LATEST] = "latest",
	[STRAT_FIRST] = "first",
	[STRAT_SOURCE] = "source",
	[STRAT_TARGET] = "target",
	[STRAT_SKIP] = "skip",
	[STRAT_ABORT] = "abort",
};

const char *const conflict_type_names[] = {
	[CONFLICT_UPDATE_UPDATE] = "update/update",
	[CONFLICT_UPDATE_DELETE] = "update/delete",
	[CONFLICT_DELETE_UPDATE] = "delete/update",
	[CONFLICT_DELETE_DELETE] = "delete/delete",
};

const char *const resolution_names[] = {
	[RES_REMOTE] = "remote",
	[RES_LOCAL] = "local",
	[RES_SKIP] = "skip",
	[RES_ABORT] = "abort",
};

int
strategy_parse(const char *name)
{
	int i;

	for (i = 0; i <= STRAT_ABORT; i++)
		if (strcmp(strategy_names[i], name) == 0)
			return i;
	return -1;
}

static const char *
str(const char *s)
{
	return s ? s : "";
}

/* Is v's conflict column value trusted (not too far past its own change time)? */
static int
trusted(const struct row_version *v, const struct strategy *s)
{
	double slack = s->future_limit;

	if (s->cc == CC_NUMBER)
		return 1;
	if (s->cc == CC_NAIVE)
		slack += CC_NAIVE_SLACK;
	return v->value <= v->changed_at + slack;
}

/*
 * The last ties, the same for every strategy's direction: the origin's name
 * (the smaller wins), then the content digest (the smaller wins).  >0 when a
 * wins.  Symmetric: tie(a, b) == -tie(b, a) unless the versions are equal.
 */
static int
tie(const struct row_version *a, const struct row_version *b)
{
	int c = strcmp(str(a->node), str(b->node));

	if (c == 0)
		c = strcmp(str(a->digest), str(b->digest));
	if (c == 0)
		c = (a->deleted ? 1 : 0) - (b->deleted ? 1 : 0); /* a live row over a delete */
	return c < 0 ? 1 : c > 0 ? -1 : 1;
}

/* What decided a latest/first comparison (for the rule text). */
enum by { BY_VALUE, BY_EQUAL_VALUE, BY_TIME, BY_NAME };

/*
 * latest (sign 1) or first (sign -1): >0 when a wins.  *by says what
 * decided; *clamped when an untrusted value was replaced by its change time.
 *
 * A timestamptz column holds instants: a version competes with its value
 * when it has a trusted one, else (a delete, a NULL) with its change time.
 * Other types (a timestamp without time zone, a date, a number) cannot be
 * compared with a change time: their values decide only when both versions
 * have trusted ones, else both compete with their change times.
 */
static int
cmp_time(const struct row_version *a, const struct row_version *b, const struct strategy *s,
    int sign, enum by *by, int *clamped)
{
	int va = !a->deleted && a->has_value, vb = !b->deleted && b->has_value;
	double ea, eb;

	if (va && !trusted(a, s)) {
		va = 0;
		*clamped = 1;
	}
	if (vb && !trusted(b, s)) {
		vb = 0;
		*clamped = 1;
	}
	if (s->cc == CC_TIME || (va && vb)) {
		ea = va ? a->value : a->changed_at;
		eb = vb ? b->value : b->changed_at;
		if (ea != eb) {
			*by = va && vb ? BY_VALUE : BY_TIME;
			return (ea > eb ? 1 : -1) * sign;
		}
		*by = va && vb ? BY_EQUAL_VALUE : BY_TIME;
	} else {
		*by = BY_TIME;
	}
	if (a->changed_at != b->changed_at)
		return (a->changed_at > b->changed_at ? 1 : -1) * sign;
	*by = BY_NAME;
	return tie(a, b);
}

/*
 * Which of two versions the strategy keeps, the same whichever is local:
 * >0 remote.  skip and abort keep none; for naming a merge they order the
 * versions as latest does.
 */
static int
remote_kept(
    const struct row_version *local, const struct row_version *remote, const struct strategy *s)
{
	enum by by = BY_TIME;
	int clamped = 0;

	switch (s->kind) {
	case STRAT_FIRST: return cmp_time(remote, local, s, -1, &by, &clamped) > 0;
	case STRAT_SOURCE:
		if (remote->rank != local->rank)
			return remote->rank < local->rank;
		return tie(remote, local) > 0;
	case STRAT_TARGET:
		if (remote->rank != local->rank)
			return remote->rank > local->rank;
		return tie(local, remote) > 0;
	default: return cmp_time(remote, local, s, 1, &by, &clamped) > 0;
	}
}

int
conflict_decide(const struct row_version *local, const struct row_version *remote,
    const struct strategy *s, struct decision *out)
{
	enum by by = BY_TIME;
	int w;

	memset(out, 0, sizeof(*out));
	if (local->deleted && remote->deleted)
		out->type = CONFLICT_DELETE_DELETE;
	else if (remote->deleted)
		out->type = CONFLICT_UPDATE_DELETE;
	else if (local->deleted)
		out->type = CONFLICT_DELETE_UPDATE;
	else
		out->type = CONFLICT_UPDATE_UPDATE;

	if (out->type == CONFLICT_DELETE_DELETE) {
		/* both gone: merge the vectors, nothing to write; named after the kept one */
		out->res = RES_REMOTE;
		out->merge_local = !remote_kept(local, remote, s);
		out->rule = "both deleted";
		return 0;
	}
	if (out->type == CONFLICT_UPDATE_UPDATE && local->digest && local->digest[0] &&
	    remote->digest && strcmp(local->digest, remote->digest) == 0) {
		/* the same row on both sides: merge the vectors, nothing to decide */
		out->res = RES_REMOTE;
		out->same = 1;
		out->merge_local = !remote_kept(local, remote, s);
		out->rule = "same content";
		return 0;
	}
	switch (s->kind) {
	case STRAT_LATEST:
	case STRAT_FIRST:
		w = cmp_time(
		    remote, local, s, s->kind == STRAT_LATEST ? 1 : -1, &by, &out->clamped);
		out->res = w > 0 ? RES_REMOTE : RES_LOCAL;
		{
			static const char *const rules[2][4] = {
				{ "latest: greater conflict column",
				    "latest: equal values, later change time",
				    "latest: later change time",
				    "latest: equal times, origin node name" },
				{ "first: smaller conflict column",
				    "first: equal values, earlier change time",
				    "first: earlier change time",
				    "first: equal times, origin node name" },
			};

			out->rule = rules[s->kind == STRAT_LATEST ? 0 : 1][by];
		}
		break;
	case STRAT_SOURCE:
		/* the version made on the node listed first */
		if (remote->rank != local->rank)
			out->res = remote->rank < local->rank ? RES_REMOTE : RES_LOCAL;
		else
			out->res = tie(remote, local) > 0 ? RES_REMOTE : RES_LOCAL;
		out->rule = remote->rank != local->rank ? "source: origin listed first wins"
							: "source: equal ranks, origin node name";
		break;
	case STRAT_TARGET:
		/* the mirror: the version made on the node listed last */
		if (remote->rank != local->rank)
			out->res = remote->rank > local->rank ? RES_REMOTE : RES_LOCAL;
		else
			out->res = tie(local, remote) > 0 ? RES_REMOTE : RES_LOCAL;
		out->rule = remote->rank != local->rank ? "target: origin listed last wins"
							: "target: equal ranks, origin node name";
		break;
	case STRAT_SKIP:
		out->res = RES_SKIP;
		out->rule = "skip: nothing applied";
		break;
	case STRAT_ABORT:
		out->res = RES_ABORT;
		out->rule = "abort: the run stops";
		break;
	}
	return 0;
}
