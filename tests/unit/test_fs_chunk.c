/*
 * test_fs_chunk.c - content-defined chunking (src/files/fs_chunk.c).
 *
 * Covers the gear table (regenerated from its documented splitmix64 seed),
 * cdc_cut()'s contract on short inputs and with eof 0 or 1, chunk sizes
 * within [CDC_MIN, CDC_MAX] except the last, the mean chunk size on 8 MiB
 * of pseudo-random data (0.5x..2x CDC_AVG; printed), determinism, streaming
 * (the data fed in pieces from 1 byte to 300 KB, each window allocated to
 * its exact size so that ASan catches a read past len) against one buffer,
 * and locality: 100 bytes and 1 MiB inserted, overwritten or deleted in the
 * middle of 16 MiB (and at the very start and end) leave every chunk before
 * the edit and every chunk from a little after it unchanged, comparing
 * chunk hashes (fs_hash.c); the bytes in chunks that the original does not
 * have stay below edit + 2 * CDC_MAX (printed).  A run of any single byte
 * value is cut at CDC_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs_chunk.h"
#include "fs_hash.h"

#define MiB (1024 * 1024)

struct chunk {
	size_t off, len;
	uint8_t h[SHA256_LEN];
};

struct chunks {
	struct chunk *c;
	size_t n;
};

/* splitmix64, as documented in fs_chunk.c; also the test data generator. */
static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z;

	*state += 0x9e3779b97f4a7c15ULL;
	z = *state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* len pseudo-random bytes from seed; free with free(). */
static uint8_t *
random_data(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i += 8) {
		uint64_t v = splitmix64(&seed);
		size_t k;

		for (k = 0; k < 8 && i + k < len; k++)
			p[i + k] = (uint8_t)(v >> (8 * k));
	}
	return p;
}

/* Chunk data[0..len) in one buffer; free cl->c with free(). */
static void
chunk_all(const uint8_t *data, size_t len, struct chunks *cl)
{
	size_t off = 0, cap = 16;

	cl->c = malloc(cap * sizeof(*cl->c));
	cl->n = 0;
	assert_non_null(cl->c);
	while (off < len) {
		size_t n = cdc_cut(data + off, len - off, 1);

		if (n == 0 || n > CDC_MAX || n > len - off)
			fail_msg("cdc_cut(eof=1) returned %zu with %zu bytes left", n, len - off);
		if (cl->n == cap) {
			cap *= 2;
			cl->c = realloc(cl->c, cap * sizeof(*cl->c));
			assert_non_null(cl->c);
		}
		cl->c[cl->n].off = off;
		cl->c[cl->n].len = n;
		sha256(data + off, n, cl->c[cl->n].h);
		cl->n++;
		off += n;
	}
}

/* Every chunk but the last is within [CDC_MIN, CDC_MAX]; they tile len. */
static void
check_sizes(const struct chunks *cl, size_t len)
{
	size_t i, total = 0;

	for (i = 0; i < cl->n; i++) {
		if (cl->c[i].off != total)
			fail_msg("chunk %zu at %zu, want %zu", i, cl->c[i].off, total);
		if (cl->c[i].len > CDC_MAX)
			fail_msg("chunk %zu is %zu bytes, over CDC_MAX", i, cl->c[i].len);
		if (i + 1 < cl->n && cl->c[i].len < CDC_MIN)
			fail_msg(
			    "chunk %zu of %zu is %zu bytes, under CDC_MIN", i, cl->n, cl->c[i].len);
		total += cl->c[i].len;
	}
	assert_true(total == len);
}

static int
same_chunk(const struct chunk *a, const struct chunk *b)
{
	return a->len == b->len && memcmp(a->h, b->h, SHA256_LEN) == 0;
}

/* ---- the table and the contract ---- */

static void
test_gear_table(void **state)
{
	uint64_t seed = 0x72657063746c6364ULL; /* "repctlcd" */
	int i, j;

	(void)state;
	for (i = 0; i < 256; i++) {
		uint64_t want = splitmix64(&seed);

		if (cdc_gear[i] != want)
			fail_msg("cdc_gear[%d] = %#llx, splitmix64 gives %#llx", i,
			    (unsigned long long)cdc_gear[i], (unsigned long long)want);
	}
	/* no two entries alike */
	for (i = 0; i < 256; i++)
		for (j = i + 1; j < 256; j++)
			assert_true(cdc_gear[i] != cdc_gear[j]);
}

static void
test_contract(void **state)
{
	uint8_t *d = random_data(2 * CDC_MAX, 1);
	size_t n;

	(void)state;
	/* nothing, or less than CDC_MIN: the rest when eof, else more please */
	assert_int_equal(cdc_cut(d, 0, 1), 0);
	assert_int_equal(cdc_cut(d, 0, 0), 0);
	assert_int_equal(cdc_cut(d, 1, 1), 1);
	assert_int_equal(cdc_cut(d, 1, 0), 0);
	assert_int_equal(cdc_cut(d, 100, 1), 100);
	assert_int_equal(cdc_cut(d, 100, 0), 0);
	assert_int_equal(cdc_cut(d, CDC_MIN, 1), CDC_MIN);
	assert_int_equal(cdc_cut(d, CDC_MIN, 0), 0);

	/* the same cut whether the buffer is long, just long enough, or final */
	n = cdc_cut(d, 2 * CDC_MAX, 0);
	assert_true(n > CDC_MIN && n <= CDC_MAX);
	assert_int_equal(cdc_cut(d, 2 * CDC_MAX, 1), n);
	assert_int_equal(cdc_cut(d, n, 0), n);
	assert_int_equal(cdc_cut(d, n, 1), n);
	assert_int_equal(cdc_cut(d, CDC_MAX, 0), n);
	/* one byte short of the boundary: no cut yet, or all of it at eof */
	assert_int_equal(cdc_cut(d, n - 1, 0), 0);
	assert_int_equal(cdc_cut(d, n - 1, 1), n - 1);
	free(d);

	/* without a boundary: CDC_MAX once there are that many bytes */
	d = calloc(2 * CDC_MAX, 1);
	assert_non_null(d);
	assert_int_equal(cdc_cut(d, CDC_MAX - 1, 0), 0);
	assert_int_equal(cdc_cut(d, CDC_MAX - 1, 1), CDC_MAX - 1);
	assert_int_equal(cdc_cut(d, CDC_MAX, 0), CDC_MAX);
	assert_int_equal(cdc_cut(d, CDC_MAX + 1, 0), CDC_MAX);
	assert_int_equal(cdc_cut(d, 2 * CDC_MAX, 1), CDC_MAX);
	free(d);
}

/* ---- sizes, mean, determinism ---- */

static void
test_sizes_and_mean(void **state)
{
	static const uint64_t seeds[] = { 2, 3, 4 };
	size_t len = 8 * MiB, i, k;

	(void)state;
	for (k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
		uint8_t *d = random_data(len, seeds[k]);
		struct chunks cl;
		size_t minlen = SIZE_MAX, maxlen = 0, at_max = 0;
		double mean;

		chunk_all(d, len, &cl);
		check_sizes(&cl, len);
		for (i = 0; i + 1 < cl.n; i++) {
			if (cl.c[i].len < minlen)
				minlen = cl.c[i].len;
			if (cl.c[i].len > maxlen)
				maxlen = cl.c[i].len;
			at_max += cl.c[i].len == CDC_MAX;
		}
		mean = (double)len / (double)cl.n;
		print_message("8 MiB random (seed %llu): %zu chunks, mean %.0f bytes "
			      "(%.2f x CDC_AVG), min %zu, max %zu, %zu cut at CDC_MAX\n",
		    (unsigned long long)seeds[k], cl.n, mean, mean / CDC_AVG, minlen, maxlen,
		    at_max);
		assert_true(mean >= 0.5 * CDC_AVG && mean <= 2.0 * CDC_AVG);
		free(cl.c);
		free(d);
	}
}

static void
test_determinism(void **state)
{
	size_t len = 4 * MiB + 12345, i;
	uint8_t *d = random_data(len, 5);
	uint8_t *copy = malloc(len);
	struct chunks a, b;

	(void)state;
	assert_non_null(copy);
	memcpy(copy, d, len);
	chunk_all(d, len, &a);
	chunk_all(copy, len, &b); /* another buffer, same bytes */
	assert_int_equal(a.n, b.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(a.c[i].off, b.c[i].off);
		assert_true(same_chunk(&a.c[i], &b.c[i]));
	}
	free(a.c);
	free(b.c);
	free(copy);
	free(d);
}

/* ---- streaming ---- */

/*
 * Feed d[0..len) in pieces of the sizes in pieces[] (cycling), calling
 * cdc_cut on the bytes not yet chunked with eof = 0 until the input ends.
 * The window holding them is allocated to its exact size.
 */
static void
chunk_streaming(
    const uint8_t *d, size_t len, const size_t *pieces, size_t npieces, struct chunks *cl)
{
	uint8_t *win = NULL;
	size_t avail = 0, fed = 0, off = 0, k = 0, cap = 16;

	cl->c = malloc(cap * sizeof(*cl->c));
	cl->n = 0;
	assert_non_null(cl->c);
	for (;;) {
		int eof = fed == len;
		size_t n = avail ? cdc_cut(win, avail, eof) : 0;

		if (n > avail || n > CDC_MAX)
			fail_msg("cdc_cut returned %zu for %zu bytes", n, avail);
		if (n == 0) {
			size_t piece;

			if (eof)
				break;
			/* "more bytes please" only while there is no full CDC_MAX */
			if (avail >= CDC_MAX)
				fail_msg("cdc_cut(eof=0) returned 0 for %zu bytes", avail);
			piece = pieces[k++ % npieces];
			if (piece > len - fed)
				piece = len - fed;
			win = realloc(win, avail + piece);
			assert_non_null(win);
			memcpy(win + avail, d + fed, piece);
			avail += piece;
			fed += piece;
			continue;
		}
		if (cl->n == cap) {
			cap *= 2;
			cl->c = realloc(cl->c, cap * sizeof(*cl->c));
			assert_non_null(cl->c);
		}
		cl->c[cl->n].off = off;
		cl->c[cl->n].len = n;
		sha256(win, n, cl->c[cl->n].h);
		cl->n++;
		off += n;
		avail -= n;
		if (avail > 0) {
			uint8_t *rest = malloc(avail);

			assert_non_null(rest);
			memcpy(rest, win + n, avail);
			free(win);
			win = rest;
		} else {
			free(win);
			win = NULL;
		}
	}
	free(win);
	assert_true(off == len);
}

static void
test_streaming(void **state)
{
	static const size_t p1[] = { 4096 };
	static const size_t p2[] = { 65536 + 3, 1, 300001, 17, 5000, CDC_MAX, 100000 };
	static const size_t p3[] = { 3 * CDC_MAX + 7 };
	static const size_t p4[] = { CDC_MIN, CDC_MIN + 1, CDC_AVG - 1 };
	static const struct {
		const size_t *p;
		size_t n;
	} plans[] = { { p1, 1 }, { p2, 7 }, { p3, 1 }, { p4, 3 } };
	size_t len = 3 * MiB + 777, i, k;
	uint8_t *d = random_data(len, 6);
	struct chunks whole, st;

	(void)state;
	chunk_all(d, len, &whole);
	for (k = 0; k < sizeof(plans) / sizeof(plans[0]); k++) {
		chunk_streaming(d, len, plans[k].p, plans[k].n, &st);
		if (st.n != whole.n)
			fail_msg(
			    "plan %zu: %zu chunks streaming, %zu in one buffer", k, st.n, whole.n);
		for (i = 0; i < st.n; i++) {
			assert_int_equal(st.c[i].off, whole.c[i].off);
			assert_true(same_chunk(&st.c[i], &whole.c[i]));
		}
		free(st.c);
	}
	free(whole.c);
	free(d);
}

/* ---- locality ---- */

/*
 * Replace del bytes at pos of orig[0..len) with ins new random bytes;
 * chunk both, and check that the chunks before the edit are the same and
 * that from some point after it on every chunk is the same again.  Returns
 * the bytes in chunks of the new version that the original does not have.
 */
static size_t
edit_and_compare(const uint8_t *orig, size_t len, const struct chunks *oc, size_t pos, size_t del,
    size_t ins, const char *what, int verbose)
{
	size_t nlen = len - del + ins;
	uint8_t *nd = malloc(nlen ? nlen : 1);
	uint8_t *fresh = random_data(ins, 0xfeed + pos + ins);
	struct chunks nc;
	size_t i, j, pre, suf, changed = 0, changed_n = 0, resync;

	assert_non_null(nd);
	memcpy(nd, orig, pos);
	memcpy(nd + pos, fresh, ins);
	memcpy(nd + pos + ins, orig + pos + del, len - pos - del);
	chunk_all(nd, nlen, &nc);
	check_sizes(&nc, nlen);

	/*
	 * Every chunk wholly before the edit is unchanged, at the same place;
	 * not the last one, which ends where the file ended and not at a
	 * boundary found in the content (appending bytes may move its end).
	 */
	for (pre = 0; pre + 1 < oc->n && oc->c[pre].off + oc->c[pre].len <= pos; pre++) {
		if (pre >= nc.n || !same_chunk(&oc->c[pre], &nc.c[pre]))
			fail_msg("%s: chunk %zu before the edit changed", what, pre);
	}
	/* the common tail, and where it starts in the original */
	for (suf = 0; suf < oc->n && suf < nc.n; suf++)
		if (!same_chunk(&oc->c[oc->n - 1 - suf], &nc.c[nc.n - 1 - suf]))
			break;
	resync = suf > 0 ? oc->c[oc->n - suf].off : len;

	for (i = 0; i < nc.n; i++) {
		for (j = 0; j < oc->n; j++)
			if (same_chunk(&nc.c[i], &oc->c[j]))
				break;
		if (j == oc->n) {
			changed += nc.c[i].len;
			changed_n++;
		}
	}
	if (verbose)
		print_message("%s at %zu: %zu new chunks, %zu bytes (edit + %lld), same again %lld "
			      "bytes after the edit\n",
		    what, pos, changed_n, changed, (long long)changed - (long long)ins,
		    (long long)resync - (long long)(pos + del));
	/* the tail re-aligns within two maximal chunks of the end of the edit */
	if (pos + del < len && resync > pos + del + 2 * CDC_MAX)
		fail_msg(
		    "%s: chunks differ until %zu, the edit ends at %zu", what, resync, pos + del);
	if (changed >= ins + 2 * CDC_MAX)
		fail_msg("%s: %zu changed bytes for an edit of %zu", what, changed, ins);
	free(nc.c);
	free(fresh);
	free(nd);
	return changed;
}

static void
test_insert_locality(void **state)
{
	size_t len = 16 * MiB;
	uint8_t *d = random_data(len, 7);
	struct chunks oc;

	(void)state;
	chunk_all(d, len, &oc);
	(void)edit_and_compare(d, len, &oc, len / 2 + 4321, 0, 100, "insert 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len / 2 + 4321, 0, MiB, "insert 1 MiB", 1);
	(void)edit_and_compare(d, len, &oc, 0, 0, 100, "insert 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len, 0, 100, "append 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len / 3, 100, 0, "delete 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len / 3, MiB, 0, "delete 1 MiB", 1);
	free(oc.c);
	free(d);
}

static void
test_overwrite_locality(void **state)
{
	size_t len = 16 * MiB;
	uint8_t *d = random_data(len, 8);
	struct chunks oc;

	(void)state;
	chunk_all(d, len, &oc);
	(void)edit_and_compare(d, len, &oc, len / 2 + 999, 100, 100, "overwrite 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len / 2 + 999, MiB, MiB, "overwrite 1 MiB", 1);
	(void)edit_and_compare(d, len, &oc, 0, 100, 100, "overwrite 100 bytes", 1);
	(void)edit_and_compare(d, len, &oc, len - 100, 100, 100, "overwrite 100 bytes", 1);
	free(oc.c);
	free(d);
}

/*
 * The same at a dozen pseudo-random places, for each of an insertion of 100
 * bytes, an insertion of 1 MiB and an overwrite of 1 MiB; prints the mean
 * and the largest number of changed bytes beyond the edit itself.
 */
static void
test_locality_many(void **state)
{
	static const struct {
		size_t del, ins;
		const char *what;
	} edits[] = {
		{ 0, 100, "insert 100 bytes" },
		{ 0, MiB, "insert 1 MiB" },
		{ MiB, MiB, "overwrite 1 MiB" },
	};
	size_t len = 16 * MiB, e, k;
	uint8_t *d = random_data(len, 9);
	uint64_t rs = 10;
	struct chunks oc;

	(void)state;
	chunk_all(d, len, &oc);
	for (e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
		size_t extra, sum = 0, worst = 0, n = 12;

		for (k = 0; k < n; k++) {
			size_t pos = (size_t)(splitmix64(&rs) % (len - MiB));

			extra = edit_and_compare(d, len, &oc, pos, edits[e].del, edits[e].ins,
				    edits[e].what, 0) -
			    edits[e].ins;
			sum += extra;
			if (extra > worst)
				worst = extra;
		}
		print_message("%s at %zu places: changed bytes beyond the edit: mean %zu, "
			      "max %zu (limit 2 * CDC_MAX = %d)\n",
		    edits[e].what, n, sum / n, worst, 2 * CDC_MAX);
	}
	free(oc.c);
	free(d);
}

/* ---- degenerate data ---- */

/* A run of any one byte value never meets the masks: CDC_MAX chunks. */
static void
test_uniform_data(void **state)
{
	size_t len = 4 * CDC_MAX + 1000, i;
	uint8_t *d = malloc(len);
	struct chunks cl;
	int b;

	(void)state;
	assert_non_null(d);
	for (b = 0; b < 256; b++) {
		memset(d, b, len);
		chunk_all(d, len, &cl);
		if (cl.n != 5)
			fail_msg("byte %#x: %zu chunks, want 5", b, cl.n);
		for (i = 0; i < 4; i++)
			if (cl.c[i].len != CDC_MAX)
				fail_msg("byte %#x: chunk %zu is %zu bytes, want CDC_MAX", b, i,
				    cl.c[i].len);
		assert_int_equal(cl.c[4].len, 1000);
		free(cl.c);
	}
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gear_table),
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_sizes_and_mean),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_insert_locality),
		cmocka_unit_test(test_overwrite_locality),
		cmocka_unit_test(test_locality_many),
		cmocka_unit_test(test_uniform_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
