/*
 * args.c — request values (JSON body values, query-string values) checked against the type of the
 * SQL argument they become, so that "limit=abc" is refused as "invalid limit" naming the argument
 * and its type instead of PostgreSQL's anonymous "invalid input syntax for type integer".  What the
 * type allows is still decided by PostgreSQL; this only catches what cannot be right.  Values are
 * never re-encoded here: body values reach PostgreSQL as the client wrote them (call.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "args.h"

/* Sets a 400 "invalid <name>" error naming what was given and what is expected. */
static bool
refuse(CallResult *res, const char *name, const char *given, const char *expected, const char *hint)
{
	char		det[256];

	res->status = 400;
	snprintf(res->code, sizeof(res->code), "22P02");
	snprintf(det, sizeof(det), "Got %.80s; %s is %s.", given, name, expected);
	free(res->message);
	free(res->details);
	free(res->hint);
	res->message = malloc(strlen(name) + 16);
	sprintf(res->message, "invalid %s", name);
	res->details = strdup(det);
	res->hint = strdup(hint);
	return false;
}

/* Set by rpc_body for this request: integers were parsed as reals (the body has one beyond 64 bits). */
static __thread bool ints_as_reals = false;

/* Says how the request's body was parsed (rpc_body). */
void
args_ints_as_reals(bool on)
{
	ints_as_reals = on;
}

/* Whether type is one of PostgreSQL's integer types; *lo and *hi get its range. */
static bool
integer_type(const char *type, long long *lo, long long *hi)
{
	if (strcmp(type, "smallint") == 0)
		*lo = -32768, *hi = 32767;
	else if (strcmp(type, "integer") == 0)
		*lo = -2147483648LL, *hi = 2147483647LL;
	else if (strcmp(type, "bigint") == 0)
		*lo = -9223372036854775807LL - 1, *hi = 9223372036854775807LL;
	else
		return false;
	return true;
}

/* Checks the text of a value for argument a; false with res set when it cannot be of a's type. */
bool
args_check_text(const CatArg *a, const char *v, CallResult *res)
{
	return args_check_named(a, a->name, v, res);
}

/* The same, naming the value as the request did (limit, not max_rows). */
bool
args_check_named(const CatArg *a, const char *shown, const char *v, CallResult *res)
{
	long long	lo,
				hi;
	char		quoted[100];

	if (v == NULL)
		return true;
	snprintf(quoted, sizeof(quoted), "\"%.80s\"", v);
	if (a->is_array)
		return true;			/* '{1,2}': PostgreSQL's own message names the type */
	if (integer_type(a->type, &lo, &hi))
	{
		char	   *end;
		long long	n;

		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno == ERANGE || n < lo || n > hi)
		{
			char		range[96];

			snprintf(range, sizeof(range), "a whole number from %lld to %lld", lo, hi);
			return refuse(res, shown, quoted, range, "Pass a whole number, e.g. 10.");
		}
		return true;
	}
	if (strcmp(a->type, "real") == 0 || strcmp(a->type, "double precision") == 0 ||
		strcmp(a->type, "numeric") == 0)
	{
		char	   *end;
		double		d = strtod(v, &end);

		if (*v == '\0' || *end != '\0' || !isfinite(d))
			return refuse(res, shown, quoted, "a number", "Pass a number, e.g. 42.5.");
		return true;
	}
	if (strcmp(a->type, "boolean") == 0)
	{
		static const char *const ok[] = {"true", "false", "t", "f", "yes", "no", "on", "off", "1", "0"};

		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (strcasecmp(v, ok[i]) == 0)
				return true;
		return refuse(res, shown, quoted, "true or false", "Pass true or false.");
	}
	if (a->is_json)
	{
		json_error_t e;
		json_t	   *j = json_loads(v, JSON_DECODE_ANY, &e);

		if (j == NULL)
			return refuse(res, shown, quoted, "JSON", "Pass a JSON value, e.g. {\"epochs\": 10}.");
		json_decref(j);
	}
	return true;
}

/*
 * Checks a JSON body value for argument a (named shown in messages) without re-encoding it: the body
 * goes to PostgreSQL as sent.  Integers beyond 64 bits were parsed as reals (rpc_body).  False with
 * res set when the value cannot be of a's type.
 */
bool
args_check_json(const CatArg *a, const char *shown, json_t *v, CallResult *res)
{
	long long	lo,
				hi;
	char		what[64];

	if (v == NULL || json_is_null(v) || a->is_json)
		return true;
	if (a->is_array)
		return json_is_array(v) ? true
			: refuse(res, shown, "a non-array value", "an array", "Pass a JSON array, e.g. [1, 2].");
	snprintf(what, sizeof(what), "%s %s", strchr("aeiou", a->type[0]) ? "an" : "a", a->type);
	if (json_is_object(v) || json_is_array(v))
		return refuse(res, shown, json_is_object(v) ? "an object" : "an array", what,
					  "Pass a single value, not an object or array.");
	if (json_is_string(v))
		return args_check_named(a, shown, json_string_value(v), res);
	if (integer_type(a->type, &lo, &hi))
	{
		char		got[64],
					range[96];

		/*
		 * An integer JSON number within the type's range, written without a fraction or exponent:
		 * PostgreSQL's cast of the text refuses "150.0".  A number beyond 64 bits was parsed as a
		 * real, and is out of every integer type's range.
		 */
		if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)
			return true;
		/* parsed as reals: a whole one that a double holds exactly was written as an integer */
		if (ints_as_reals && json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
			fabs(json_real_value(v)) < 9007199254740992.0 && json_real_value(v) >= (double) lo &&
			json_real_value(v) <= (double) hi)
			return true;
		if (json_is_boolean(v))
			snprintf(got, sizeof(got), "%s", json_is_true(v) ? "true" : "false");
		else if (json_is_integer(v))
			snprintf(got, sizeof(got), "%lld", (long long) json_integer_value(v));
		else if (fabs(json_real_value(v)) >= 9.2e18)
			snprintf(got, sizeof(got), "a number beyond 64 bits");
		else
			snprintf(got, sizeof(got), "%.17g (a number with a fraction or exponent)", json_real_value(v));
		snprintf(range, sizeof(range), "a whole number from %lld to %lld", lo, hi);
		return refuse(res, shown, got, range, "Pass a whole number without a decimal point, e.g. 10.");
	}
	if ((strcmp(a->type, "real") == 0 || strcmp(a->type, "double precision") == 0 ||
		 strcmp(a->type, "numeric") == 0) && !json_is_number(v))
		return refuse(res, shown, json_is_true(v) ? "true" : "false", "a number", "Pass a number, e.g. 42.5.");
	if (strcmp(a->type, "boolean") == 0 && !json_is_boolean(v))
		return refuse(res, shown, "a number", "true or false", "Pass true or false.");
	return true;
}

/* The argument of f named name, or NULL. */
const CatArg *
args_find(const CatFunc *f, const char *name)
{
	for (int i = 0; i < f->nargs; i++)
		if (strcmp(f->args[i].name, name) == 0)
			return &f->args[i];
	return NULL;
}
