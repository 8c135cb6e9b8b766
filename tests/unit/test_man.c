/*
 * test_man.c - every command of the grammar table (cli_commands[] in
 * src/cli/cli.c) has an entry in the man page docs/repctl.1, so that the
 * manual cannot fall behind the binary again (it once lacked the folder
 * commands and said the file sync was not built).
 *
 * A command's entry is its literal words (the first spelling of each
 * alternative, up to the first placeholder) at the start of a .B/.BR/.BI
 * line or of a \fB...\fP span, with the man page's escaped hyphens read as
 * hyphens.  The man page is found by walking up from the test binary's
 * directory (build/tests/, build-asan/tests/) to the tree that holds
 * docs/repctl.1.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

/* The man page's text with "\-" read as "-"; NULL when not found. */
static char *
read_man(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	FILE *f = NULL;
	char *text, *s, *d;
	long len;

	if (n <= 0)
		return NULL;
	dir[n] = '\0';
	while (f == NULL) {
		char *slash = strrchr(dir, '/');

		if (slash == NULL || slash == dir)
			return NULL;
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/docs/repctl.1", dir);
		f = fopen(path, "r");
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	for (s = d = text; *s; s++) {
		if (s[0] == '\\' && s[1] == '-')
			continue;
		*d++ = *s;
	}
	*d = '\0';
	return text;
}

/* "add database|db <name>" -> "add database" */
static void
literal_words(const char *pattern, char *out, size_t outlen)
{
	char *copy = strdup(pattern), *save = NULL, *w;
	size_t used = 0;

	assert_non_null(copy);
	out[0] = '\0';
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *bar = strchr(w, '|');

		if (w[0] == '<' || w[0] == '[')
			break;
		if (bar)
			*bar = '\0';
		used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? " " : "", w);
	}
	free(copy);
}

static int
has_entry(const char *man, const char *words)
{
	static const char *const starts[] = { "\n.B ", "\n.BR ", "\n.BI ", "\n.B \"", "\n.BR \"",
		"\n.BI \"", "\n\\fB" };
	size_t i, wl = strlen(words);

	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		const char *p = man;
		size_t sl = strlen(starts[i]);

		while ((p = strstr(p, starts[i])) != NULL) {
			const char *e = p + sl;
			char next = e[wl];

			if (strncmp(e, words, wl) == 0 &&
			    (next == '\0' || next == ' ' || next == '\n' || next == '"' ||
				next == '\\'))
				return 1;
			p += sl;
		}
	}
	return 0;
}

static void
test_every_command_documented(void **state)
{
	char *man = read_man();
	const struct cmd *c;
	int missing = 0, n = 0;

	(void)state;
	if (man == NULL)
		fail_msg("docs/repctl.1 not found above the test binary");
	for (c = cli_commands; c->pattern; c++, n++) {
		char words[256];

		literal_words(c->pattern, words, sizeof(words));
		if (!has_entry(man, words)) {
			print_error("command '%s' has no entry in docs/repctl.1\n", words);
			missing++;
		}
	}
	free(man);
	assert_true(n > 30);
	assert_int_equal(missing, 0);
}

static void
test_words(void **state)
{
	char w[64];

	(void)state;
	literal_words("add database|db <name>", w, sizeof(w));
	assert_string_equal(w, "add database");
	literal_words("conflicts [<sync>]", w, sizeof(w));
	assert_string_equal(w, "conflicts");
	literal_words("list tables|table", w, sizeof(w));
	assert_string_equal(w, "list tables");
	assert_true(has_entry("x\n.BI \"add sync\" \" name\"\n", "add sync"));
	assert_true(has_entry("x\n\\fBsync folder\\fP \\fIname\\fP\n", "sync folder"));
	assert_false(has_entry("x\n.B sync folders\n", "sync folder"));
	assert_false(has_entry("x sync folder\n", "sync folder"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_every_command_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
