/*
 * settings.c — the network settings (modelmine.settings), read through a per-backend cache.
 *
 * Settings are rows, not GUCs (any session can SET a GUC), and nearly every call reads a few of
 * them.  One query per read made them a visible share of a job's settlement, so each backend keeps
 * all of them in memory and reloads them after a change: a statement trigger on modelmine.settings
 * sends a relcache invalidation for the table, which reaches this backend at its next command and
 * every other backend at its next transaction, exactly when a new row version becomes visible to
 * it.
 */
#include "modelmine.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(mm_settings_changed);
PG_FUNCTION_INFO_V1(mm_setting);

#define MAX_SETTINGS 64

typedef struct Setting
{
	char		name[NAMEDATALEN];
	int64		value;
} Setting;

static Setting cache[MAX_SETTINGS];
static int	ncache = 0;
static bool cache_valid = false;
static Oid	settings_relid = InvalidOid;

/* Relcache callback: any invalidation of modelmine.settings (or of everything) drops the cache. */
static void
SettingsInvalidated(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == settings_relid)
		cache_valid = false;
}

/* Drops the cached settings whenever modelmine.settings changes (relcache inval). */
void
MmSettingsInit(void)
{
	CacheRegisterRelcacheCallback(SettingsInvalidated, (Datum) 0);
}

/*
 * Loads every setting (replaces SPI_tuptable), as the extension's owner: the first reader in a
 * backend may be a function that runs with its caller's rights (a view's, such as admin_nodes'
 * _spotcheck_pct), and the caller may not read modelmine.settings.  An error restores the user
 * at abort.
 */
static void
LoadSettings(void)
{
	static MmPlan all = {"SELECT name, value FROM modelmine.settings", 0, {0}};
	Oid			save_user;
	int			save_context;
	uint64		n;

	GetUserIdAndSecContext(&save_user, &save_context);
	if (MmSchemaCurrent())
		SetUserIdAndSecContext(MmSchemaOwner(), save_context | SECURITY_LOCAL_USERID_CHANGE);
	n = MmExec(&all, NULL, NULL, true, 0);
	SetUserIdAndSecContext(save_user, save_context);

	if (n > MAX_SETTINGS)
		elog(ERROR, "modelmine: %llu settings, more than the %d this library keeps",
			 (unsigned long long) n, MAX_SETTINGS);
	for (uint64 i = 0; i < n; i++)
	{
		strlcpy(cache[i].name, MmText(i, 1), NAMEDATALEN);
		cache[i].value = MmInt64(i, 2, NULL);
	}
	ncache = (int) n;
	settings_relid = get_relname_relid("settings", get_namespace_oid("modelmine", false));
	cache_valid = true;
}

/*
 * An integer setting.  A missing row is a broken install, not user error.  On a cache miss this
 * runs a query, which replaces SPI_tuptable: read a result before asking for a setting.
 */
int64
MmSetting(const char *name)
{
	if (!cache_valid)
		LoadSettings();
	for (int i = 0; i < ncache; i++)
		if (strcmp(cache[i].name, name) == 0)
			return cache[i].value;
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
					errmsg("modelmine setting \"%s\" is missing", name),
					errhint("Reinstall the extension, or restore the row in modelmine.settings.")));
	return 0;					/* keep compiler quiet */
}

/*
 * A setting from the cache without running a query (at commit, where none should run): false if
 * unloaded.
 */
bool
MmSettingIfCached(const char *name, int64 *value)
{
	if (!cache_valid)
		return false;
	for (int i = 0; i < ncache; i++)
		if (strcmp(cache[i].name, name) == 0)
		{
			*value = cache[i].value;
			return true;
		}
	return false;
}

/* AFTER statement trigger on modelmine.settings: every backend reloads its cached settings. */
Datum
mm_settings_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mm_settings_changed must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * SQL: _setting(name) — a setting from this backend's cache.  Inlined SQL helpers that run with their
 * caller's rights (admin_nodes' _node_liveness) read settings through it, not from the table.
 */
Datum
mm_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		value;

	if (MmSettingIfCached(name, &value))
		PG_RETURN_INT64(value);
	MmConnect();				/* the first read in this backend loads the cache */
	value = MmSetting(name);
	SPI_finish();
	PG_RETURN_INT64(value);
}
