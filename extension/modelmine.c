/*
 * modelmine.c — module magic and per-backend initialisation.
 *
 * The library needs no shared_preload_libraries entry: it is loaded on the first call of any of its
 * functions, and everything it keeps per backend (prepared plans, the identity binding) is rebuilt
 * on demand.
 */
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

extern void MmAuthInit(void);
extern void MmSettingsInit(void);

void		_PG_init(void);

/* Library load: the binding GUC and the settings cache invalidation. */
void
_PG_init(void)
{
	MmAuthInit();
	MmSettingsInit();
}
