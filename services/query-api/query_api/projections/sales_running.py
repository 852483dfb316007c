"""Running totals per outlet (migration 0027): `sales_outlet_running` (an outlet's figures from its first day with
sales up to each day, a row for every day from its first to its last day with sales) and `sales_outlet_totals` (its
figures as of its last day), so that any range's figures of every outlet are two rows each (reads/sales.py:
_DRILL_BY_OUTLET_RUNNING_SQL). Kept apart from the other rollups so the live fold and the bulk loader each take
them with one call.

Keyed by outlet, they never move when reference data changes. The live upkeep is absolute, not additive: each
affected (outlet, day) row is recomputed from the rows as they were before the statement (the fold is the only
writer, one at a time under its advisory lock; a rebuild's loaders run the same statement alone), which is what
lets one statement both fill the days between an outlet's last day and a new one and add a late line to every
later day.

Kept in two steps (migration 0030): every fold (sales_fold.py) queues its lines per (outlet, day) in
`sales_outlet_running_unfolded` (`queue_for_running`, a cheap append); `fold_running`, less often, moves that queue
into the two tables. A late line rewrites an outlet's rows from its day on, so rewriting them once per interval
rather than once per fold is what saves the work (~3 running rows a folded line, when every fold did it). Reads add
the queue, as they add sales_lines_unfolded.

The running totals per (brand, outlet) (sales_brand_running.py) share the queue and the interval (migration 0032):
the queue is keyed (outlet, brand, day), the outlets' rows are grouped from it and the brands' from its rows with a
brand, so a pair's rows too are rewritten once an interval rather than once a fold.
"""

from query_api.figures.measures import NAMES, column_list, sums
from query_api.projections.sales_brand_running import outlet_brand_running_rollup

RUNNING = "sales_outlet_running"
TOTALS = "sales_outlet_totals"
QUEUE = "sales_outlet_running_unfolded"
TABLES = (RUNNING, TOTALS)

_BEFORE = ", ".join(
    f"coalesce(r.{name}, CASE WHEN x.day > t.day THEN t.{name} ELSE 0 END) + coalesce(c.{name}, 0) AS {name}"
    for name in NAMES
)
_OVERWRITE = ", ".join(f"{name} = excluded.{name}" for name in NAMES)
_WINDOWED = ", ".join(f"sum({name}) OVER w AS {name}" for name in NAMES)


def queue_for_running(lines: str, created: str) -> str:
    """A data-modifying CTE (`running_queued AS (...)`) queuing the rows of the CTE `lines` (a fold's lines summed
    per (outlet, day, brand): outlet_id, day, brand, rows and the figures) for both running totals, the outlets' and
    the brands' (sales_brand_running.py, migration 0032). A day counts towards `days` when the CTE `created` (the
    upsert into sales_outlet_daily: outlet_id, day, created) says the fold created its sales_outlet_daily row, and
    on one of the fold's rows of that (outlet, day) only: each (outlet, day) is counted by the one fold that creates
    its row, however many brands it sold."""
    return f"""
running_queued AS (
    INSERT INTO {QUEUE} (outlet_id, day, brand, days, rows, {column_list()})
    SELECT g.outlet_id, g.day, g.brand,
           (c.created AND row_number() OVER (PARTITION BY g.outlet_id, g.day) = 1)::int, g.rows, {column_list("g.")}
    FROM {lines} g
    JOIN {created} c ON c.outlet_id = g.outlet_id AND c.day = g.day
)"""  # noqa: S608 (names fixed in code)


def outlet_running_rollup(lines: str) -> str:
    """Data-modifying CTEs (`running_deltas AS (...), ...`) adding the rows of the CTE `lines` (rows of the queue:
    outlet_id, day, days and the figures, several per key) to the running totals, set-based: per outlet they touch,
    its rows from the first day they add to through its last day with sales (one row when it sells on its latest
    day again, the live case; more for a gap since its last day, or a late line)."""
    return f"""
running_deltas AS (
    SELECT n.outlet_id, n.day, {sums("n.")}, sum(n.days)::int AS days
    FROM {lines} n
    GROUP BY n.outlet_id, n.day
), running_added AS (
    -- The batch's figures per outlet summed up to each of its days, valid until its next one.
    SELECT outlet_id, day, lead(day) OVER o AS next_day, sum(days) OVER w AS days, {_WINDOWED}
    FROM running_deltas
    WINDOW o AS (PARTITION BY outlet_id ORDER BY day), w AS (o ROWS UNBOUNDED PRECEDING)
), running_span AS (
    -- From the first day the batch adds to, or the day after the outlet's last (the days between it and the batch's
    -- first are filled with its totals), to its last day now.
    SELECT g.outlet_id, least(min(g.day), max(t.day) + 1) AS first_changed,
           greatest(max(g.day), max(t.day)) AS last_day
    FROM running_deltas g
    LEFT JOIN {TOTALS} t ON t.outlet_id = g.outlet_id
    GROUP BY g.outlet_id
), running_rows AS (
    -- Each day's new figures: as before (its row; the outlet's totals after its last day; nothing before its
    -- first) plus the batch's up to it (none on the filled days before the batch's first).
    SELECT s.outlet_id, x.day, s.last_day, coalesce(r.days, CASE WHEN x.day > t.day THEN t.days ELSE 0 END)
           + coalesce(c.days, 0) AS days, {_BEFORE}
    FROM running_span s
    CROSS JOIN LATERAL (
        SELECT d::date AS day FROM generate_series(s.first_changed, s.last_day, interval '1 day') AS d
    ) AS x
    LEFT JOIN {TOTALS} t ON t.outlet_id = s.outlet_id
    -- Looked up by key, day by day: joined plainly, the planner (which cannot count a CTE's rows) hashed the whole
    -- table (446k rows at 2M lines: 2.2 s a fold).
    LEFT JOIN LATERAL (
        SELECT * FROM {RUNNING} r WHERE r.day = x.day AND r.outlet_id = s.outlet_id LIMIT 1
    ) AS r ON true
    LEFT JOIN running_added c
      ON c.outlet_id = s.outlet_id AND c.day <= x.day AND (c.next_day IS NULL OR x.day < c.next_day)
), by_running AS (
    INSERT INTO {RUNNING} (day, outlet_id, days, {column_list()})
    SELECT day, outlet_id, days, {column_list()} FROM running_rows
    ON CONFLICT (day, outlet_id) DO UPDATE SET days = excluded.days, {_OVERWRITE}
), by_totals AS (
    INSERT INTO {TOTALS} (outlet_id, day, days, {column_list()})
    SELECT outlet_id, day, days, {column_list()} FROM running_rows WHERE day = last_day
    ON CONFLICT (outlet_id) DO UPDATE SET day = excluded.day, days = excluded.days, {_OVERWRITE}
)"""  # noqa: S608 (names fixed in code)


# The queue moved into both running totals, all of it: it holds what the folds of one interval queued. One DELETE
# for both, so a queued row is in the queue or in both tables at any snapshot, never in one of them only.
FOLD_RUNNING = f"""
WITH running_taken AS (
    DELETE FROM {QUEUE} RETURNING *
), {outlet_running_rollup("running_taken")},
{outlet_brand_running_rollup("running_taken")}
SELECT count(*) FROM running_taken
"""  # noqa: S608 (names fixed in code)
ANY_QUEUED_FOR_RUNNING = f"SELECT EXISTS (SELECT FROM {QUEUE})"  # noqa: S608 (a name fixed in code)


def bulk_outlet_running() -> str:
    """Both tables derived from sales_outlet_daily after a bulk load (which filled that one from every line): the
    running sums per outlet, each day repeated until the outlet's next day with sales, then each outlet's last.
    Written in day order, as the live path appends them: a day's rows (what a read takes) share pages. Sorted by the
    day alone: the outlets' order within a day does not change which pages a day's rows are on, and comparing
    outlet ids (strcoll under a libc collation) was most of the sort (1.28 -> 0.98 s backend CPU on 200k lines)."""
    return f"""
WITH r AS (
    SELECT outlet_id, day, lead(day) OVER o AS next_day, count(*) OVER w AS days, {_WINDOWED}
    FROM sales_outlet_daily
    WINDOW o AS (PARTITION BY outlet_id ORDER BY day), w AS (o ROWS UNBOUNDED PRECEDING)
), totals AS (
    INSERT INTO {TOTALS} (outlet_id, day, days, {column_list()})
    SELECT outlet_id, day, days, {column_list()} FROM r WHERE next_day IS NULL
)
INSERT INTO {RUNNING} (day, outlet_id, days, {column_list()})
SELECT g.day::date, r.outlet_id, r.days, {column_list("r.")}
FROM r
CROSS JOIN LATERAL generate_series(r.day, coalesce(r.next_day - 1, r.day), interval '1 day') AS g(day)
ORDER BY 1;
"""  # noqa: S608 (names fixed in code)
