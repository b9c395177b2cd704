/*
 * jobevents.c — the outbox events of jobs that ended (job_completed, job_failed, job_canceled).
 *
 * Called by the statistics statement trigger on modelmine.jobs (stats.c), which already holds the
 * statement's transition tables and has seen, from the deltas it wrote, whether any job reached an
 * end.  A separate PL/pgSQL statement trigger used to do this: it ran on every update of jobs, the
 * claims included, and cost a security-definer call and a query each time (about 7% of a noop
 * drain's throughput); now only statements that end jobs pay, with one query.
 */
#include "modelmine.h"

/*
 * Writes the outbox rows of each job in old_jobs/new_jobs (registered with SPI by the caller) that
 * reached COMPLETED, FAILED or CANCELED, for owners who opted into that event.  Runs under the
 * search_path every definer function of the extension has, as the PL/pgSQL trigger did: whoever
 * updated jobs, their own operators must not apply.  Returns how many events were written.
 */
int64
MmOutboxJobsEnded(void)
{
	static MmPlan emit = {
		"SELECT pg_catalog.count(*) FILTER (WHERE x.n > 0)::bigint FROM ("
		"SELECT modelmine._outbox_emit(n.user_id, e.event, "
		"       pg_catalog.jsonb_build_object('job_id', n.id, 'title', n.title, 'status', n.status, "
		"                                     'stake', n.stake, 'node_id', n.node_id, "
		"                                     'error', pg_catalog.left(n.error, 500), "
		"                                     'finished_at', COALESCE(n.finished_at, pg_catalog.now()))) "
		"       AS n "
		"  FROM old_jobs o JOIN new_jobs n ON n.id = o.id "
		" CROSS JOIN LATERAL (SELECT 'job_' || pg_catalog.lower(n.status::text) AS event) e "
		" WHERE o.status IS DISTINCT FROM n.status "
		"   AND n.status IN ('COMPLETED', 'FAILED', 'CANCELED') "
		/* _outbox_emit checks the preferences again; this only skips the calls that write nothing */
		"   AND EXISTS (SELECT 1 FROM modelmine.notification_prefs p "
		"                WHERE p.user_id = n.user_id AND e.event = ANY (p.events)) "
		" ORDER BY n.id) x", 0, {0}};
	int			nest = MmFixSearchPath();
	int64		n;

	MmExec(&emit, NULL, NULL, false, 1);
	n = MmInt64(0, 1, NULL);
	MmRestoreSearchPath(nest);
	return n;
}
