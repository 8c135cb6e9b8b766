/*
 * vv.h - version vectors {node: counter}, as stored in the shadow tables
 * (jsonb) and compared by repctl.vv_cmp() on the nodes.  Pure; unit-tested.
 */
#ifndef REPCTL_VV_H
#define REPCTL_VV_H

#include <stddef.h>

struct vv_entry {
	char *node;
	long long counter;
};

struct vv {
	struct vv_entry *e;
	int n;
};

enum vv_order {
	VV_EQUAL = 0,
	VV_DOMINATES = 1,  /* a is newer: it has seen everything b has */
	VV_DOMINATED = -1, /* b is newer */
	VV_CONCURRENT = 2, /* neither saw the other: a conflict */
};

/* Parse jsonb text like {"a": 2, "b": 1}; NULL or "" is the empty vector. 0 or -1. */
int vv_parse(const char *json, struct vv *out) __attribute__((warn_unused_result));
void vv_free(struct vv *v);
long long vv_get(const struct vv *v, const char *node);
enum vv_order vv_compare(const struct vv *a, const struct vv *b);
/* out = element-wise max of a and b (out must be empty; vv_free it). */
void vv_merge(const struct vv *a, const struct vv *b, struct vv *out);
/* JSON text, keys sorted; free(). */
char *vv_to_json(const struct vv *v);

#endif
