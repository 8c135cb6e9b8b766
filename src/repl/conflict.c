/*
 * conflict.c - decide who wins a true conflict.
 *
 * Causality (vv.c) has already said the two versions are concurrent; the
 * sync's strategy picks the winner here.  latest/first compare the conflict
 * column (updated_at by default); a deleted row, or a table without the
 * column, competes with its change time at the origin; equal values fall
 * back to the change time (Rails' update_all leaves updated_at alone), then
 * to the node name.  A column value further in the future than the limit
 * is not trusted (one bad clock must not win every conflict forever): it is
 * replaced by the version's change time and the decision says so.  Every
 * input is a property of the versions themselves, so every node, and both
 * directions of a pair of one-way syncs, reach the same decision.
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

/* The value a version competes with under latest/first. */
static double
effective(const struct row_version *v, const struct strategy *s, int *clamped)
{
	if (v->deleted || !v->has_value)
		return v->changed_at;
	if (v->value > s->now + s->future_limit) {
		*clamped = 1;
		return v->changed_at;
	}
	return v->value;
}

/* >0 when a should win over b under latest (greater is newer). */
static int
cmp_latest(const struct row_version *a, const struct row_version *b, double va, double vb)
{
	if (va != vb)
		return va > vb ? 1 : -1;
	if (a->changed_at != b->changed_at)
		return a->changed_at > b->changed_at ? 1 : -1;
	return strcmp(a->node, b->node) <= 0 ? 1 : -1;
}

static int
cmp_first(const struct row_version *a, const struct row_version *b, double va, double vb)
{
	if (va != vb)
		return va < vb ? 1 : -1;
	if (a->changed_at != b->changed_at)
		return a->changed_at < b->changed_at ? 1 : -1;
	return strcmp(a->node, b->node) <= 0 ? 1 : -1;
}

int
conflict_decide(const struct row_version *local, const struct row_version *remote,
    const struct strategy *s, struct decision *out)
{
	double vl, vr;

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
		/* both gone: take the remote vector, nothing to write */
		out->res = RES_REMOTE;
		out->rule = "both deleted";
		return 0;
	}
	switch (s->kind) {
	case STRAT_LATEST:
		vl = effective(local, s, &out->clamped);
		vr = effective(remote, s, &out->clamped);
		out->res = cmp_latest(remote, local, vr, vl) > 0 ? RES_REMOTE : RES_LOCAL;
		out->rule = vl == vr ? (local->changed_at == remote->changed_at
					       ? "latest: equal values and times, node name"
					       : "latest: equal values, later change time")
				     : "latest: greater conflict column or change time";
		break;
	case STRAT_FIRST:
		vl = effective(local, s, &out->clamped);
		vr = effective(remote, s, &out->clamped);
		out->res = cmp_first(remote, local, vr, vl) > 0 ? RES_REMOTE : RES_LOCAL;
		out->rule = vl == vr ? (local->changed_at == remote->changed_at
					       ? "first: equal values and times, node name"
					       : "first: equal values, earlier change time")
				     : "first: smaller conflict column or change time";
		break;
	case STRAT_SOURCE:
		/* the version held by the node listed first in dbs= */
		if (remote->rank != local->rank)
			out->res = remote->rank < local->rank ? RES_REMOTE : RES_LOCAL;
		else
			out->res = strcmp(remote->node, local->node) <= 0 ? RES_REMOTE : RES_LOCAL;
		out->rule = "source: first-listed source wins";
		break;
	case STRAT_TARGET:
		out->res = RES_LOCAL;
		out->rule = "target: the target keeps its version";
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
