#!/usr/bin/env bash
# tests/integration/t_refused_values.sh - a value the target refuses while
# staging never stops an edge (issue 11, item 4): the row is quarantined
# with the server's message, the rest of its table and the other tables
# flow, and once the target accepts the value the row arrives and its entry
# is resolved.
#
# Pair a <-> b (syncs ab and ba, bucardo_latest).  Two ways b refuses a's
# values:
#  - an enum label added on a only (ALTER TYPE mood ADD VALUE 'ecstatic', as
#    a migration that has not reached b yet): kitchen_sink.m;
#  - a domain whose CHECK is stricter on b (rating: 0..10 on a, 0..5 on b):
#    reviews.score.
# a inserts one row with the refused value and one without in each table,
# updates an existing row to a refused value, and writes an unrelated
# table.
#
# Proves:
#  - run ab is not stopped: the rows without a refused value, and the
#    unrelated table, arrive on b in the same run; b keeps its old version
#    of the updated rows;
#  - each refused row is in repctl.quarantine, unresolved, with the
#    server's message (invalid input value for enum / violates check
#    constraint of the domain); a later run retries it and still flows
#    everything else;
#  - after b adds the label and relaxes the domain, the next runs apply the
#    rows, every entry is resolved and a and b are identical.
# Today COPY into the staging table fails and with it the whole edge, every
# run: nothing of a's reaches b, nothing is quarantined.
# shellcheck disable=SC2317 # helpers are called through ok / on_failure_push
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/pg.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/fixtures.sh"
# shellcheck source-path=SCRIPTDIR
. "$HERE/lib/repl.sh"

REPL_SCHEMA_SQL+=$(
	cat <<'SQL'

CREATE DOMAIN public.rating AS integer CONSTRAINT rating_range CHECK (VALUE BETWEEN 0 AND 10);
CREATE TABLE public.reviews (
    id         bigint PRIMARY KEY,
    score      public.rating,
    body       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SQL
)

NODES=(a b)
repl_setup "${NODES[@]}"
for s in ab:a:b ba:b:a; do
	IFS=: read -r name src dst <<<"$s"
	run_repctl add sync "$name" relgroup=h dbs="$src:source,$dst:target" conflict_strategy=bucardo_latest
	is "$RC" 0 "add sync $name"
done
# b's domain is stricter
repl_sql b "ALTER DOMAIN rating DROP CONSTRAINT rating_range;
            ALTER DOMAIN rating ADD CONSTRAINT rating_range CHECK (VALUE BETWEEN 0 AND 5)"

meta() { pg_sql meta postgres "$1"; }
on_failure_push "echo '# ---- repctl.quarantine:'; pg_sql meta postgres 'SELECT * FROM repctl.quarantine ORDER BY id' | sed 's/^/# /'"

converge() {
	local rc=0
	repl_converge 6 ab ba || rc=$?
	is "$rc" 0 "$1: the rounds become quiet"
}

ks() { repl_val "$1" "SELECT coalesce(string_agg(id || '=' || m, ',' ORDER BY id), '') FROM kitchen_sink"; }
rv() { repl_val "$1" "SELECT coalesce(string_agg(id || '=' || score, ',' ORDER BY id), '') FROM reviews"; }
songs() { repl_val "$1" "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM songs"; }
# quar [WHERE] : "sync|table|id" of the quarantine entries
quar() {
	meta "SELECT coalesce(string_agg(concat_ws('|', sync, table_name, pk->>'id'), ',' ORDER BY sync, table_name, pk->>'id'), '')
	        FROM repctl.quarantine ${1:+WHERE $1}"
}

# ---- a converged start ------------------------------------------------------------------------
repl_sql a "INSERT INTO kitchen_sink (id, m) VALUES (3, 'ok');
            INSERT INTO reviews (id, score) VALUES (3, 3)"
converge "initial copy"
repl_same "initial copy" a b

# ---- a gets a new label and writes values b refuses ------------------------------------------------
repl_sql a "ALTER TYPE mood ADD VALUE 'ecstatic'"
repl_sql a "INSERT INTO kitchen_sink (id, m) VALUES (1, 'ecstatic'), (2, 'happy');
            UPDATE kitchen_sink SET m = 'ecstatic', updated_at = now() WHERE id = 3;
            INSERT INTO reviews (id, score) VALUES (1, 8), (2, 4);
            UPDATE reviews SET score = 9, updated_at = now() WHERE id = 3;
            INSERT INTO songs (id, title) VALUES (1, 'unrelated 1')"
repl_run ab
note "run ab with refused values: exit $RUN_RC"
like "$RUN_OUT$RUN_ERR" 'quarantin' "run ab reports the quarantined rows"
is "$(ks b)" "2=happy,3=ok" "kitchen_sink on b: the good row arrived, the refused insert did not, the refused update left b's version"
is "$(rv b)" "2=4,3=3" "reviews on b: likewise"
is "$(songs b)" "1" "the unrelated table flowed in the same run"
is "$(quar "resolved_at IS NULL")" "ab|kitchen_sink|1,ab|kitchen_sink|3,ab|reviews|1,ab|reviews|3" \
	"the four refused rows are quarantined, unresolved"
like "$(meta "SELECT string_agg(reason, ' / ') FROM repctl.quarantine WHERE table_name = 'kitchen_sink'")" \
	'invalid input value for enum (public\.)?mood: "ecstatic"' "kitchen_sink: the server's message is kept"
like "$(meta "SELECT string_agg(reason, ' / ') FROM repctl.quarantine WHERE table_name = 'reviews'")" \
	'value for domain (public\.)?rating violates check constraint "rating_range"' "reviews: the server's message is kept"

# retried, still refused; the rest still flows
repl_sql a "INSERT INTO kitchen_sink (id, m) VALUES (4, 'sad');
            INSERT INTO reviews (id, score) VALUES (4, 1);
            INSERT INTO songs (id, title) VALUES (2, 'unrelated 2')"
repl_run ab
is "$(ks b)/$(rv b)/$(songs b)" "2=happy,3=ok,4=sad/2=4,3=3,4=1/1,2" "the next run: the new good rows flowed"
is "$(quar "resolved_at IS NULL")" "ab|kitchen_sink|1,ab|kitchen_sink|3,ab|reviews|1,ab|reviews|3" \
	"the next run: the refused rows are still quarantined"
like "$(meta "SELECT min(attempts) FROM repctl.quarantine")" '^[2-9]' "... and were retried"
repl_run ba
is "$RUN_RC" 0 "run ba is good"
is "$(ks a)/$(rv a)" "1=ecstatic,2=happy,3=ecstatic,4=sad/1=8,2=4,3=9,4=1" "a kept its rows"

# ---- b accepts the values: the rows arrive, the entries are resolved ------------------------------
repl_sql b "ALTER TYPE mood ADD VALUE 'ecstatic'"
repl_sql b "ALTER DOMAIN rating DROP CONSTRAINT rating_range;
            ALTER DOMAIN rating ADD CONSTRAINT rating_range CHECK (VALUE BETWEEN 0 AND 10)"
converge "after b accepts the values"
is "$(ks b)" "1=ecstatic,2=happy,3=ecstatic,4=sad" "kitchen_sink: the refused rows arrived"
is "$(rv b)" "1=8,2=4,3=9,4=1" "reviews: the refused rows arrived"
is "$(quar "resolved_at IS NULL")" "" "no quarantine entry left unresolved"
is "$(quar "resolved_at IS NOT NULL")" "ab|kitchen_sink|1,ab|kitchen_sink|3,ab|reviews|1,ab|reviews|3" \
	"the four entries are resolved"
repl_same "at the end" a b

done_testing
