/* sysinfo.c — the load a heartbeat reports: CPU (/proc/stat deltas) and memory (/proc/meminfo). */
#include <stdio.h>
#include <string.h>

#include "worker.h"

/* Busy share of all CPU time since the previous call, in percent (0 on the first call). */
double
cpu_load_percent(void)
{
	static unsigned long long prev_busy,
				prev_total;
	unsigned long long v[10] = {0},
				busy,
				total = 0;
	double		pct = 0;
	FILE	   *f = fopen("/proc/stat", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) < 4)
	{
		fclose(f);
		return 0;
	}
	fclose(f);
	for (int i = 0; i < 8; i++)		/* guest time is already in user */
		total += v[i];
	busy = total - v[3] - v[4];		/* minus idle and iowait */
	if (prev_total && total > prev_total)
		pct = 100.0 * (double) (busy - prev_busy) / (double) (total - prev_total);
	prev_busy = busy;
	prev_total = total;
	return pct < 0 ? 0 : pct > 100 ? 100 : pct;
}

/* Memory in use (total minus available) and in total, in MiB. */
void
memory_mb(int *used, int *total)
{
	char		line[256];
	unsigned long long kb_total = 0,
				kb_avail = 0,
				kb;
	FILE	   *f = fopen("/proc/meminfo", "r");

	*used = 0;
	*total = 1;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			kb_total = kb;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			kb_avail = kb;
	}
	fclose(f);
	if (kb_total == 0)
		return;
	*total = (int) (kb_total / 1024);
	*used = (int) ((kb_total - (kb_avail < kb_total ? kb_avail : kb_total)) / 1024);
}
