/*
 * reply.c — every response goes out through here: the body, the content type, CORS (only when the
 * request sent Origin, as PostgREST does) and PostgREST's error body {"code","details","hint","message"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* CORS headers for a request that sent Origin: echo it, allow credentials, expose what clients read. */
void
reply_add_common(Request *r, struct MHD_Response *resp)
{
	const char *origin = req_header(r, "Origin");

	if (origin && *origin)
	{
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
								"Content-Encoding, Content-Location, Content-Range, Content-Type, Date, "
								"Location, Server, Transfer-Encoding, Range-Unit, Retry-After, "
								"Preference-Applied");
		MHD_add_response_header(resp, "Vary", "Origin");
	}
}

/* Sends a response with a body (copied) and extra headers; status 204 and 304 carry no body. */
enum MHD_Result
reply(Request *r, int status, const char *content_type, const char *body, size_t len,
	  const ReplyHeader *headers, int nheaders)
{
	struct MHD_Response *resp;
	enum MHD_Result res;

	if (status == 204 || status == 304)
		len = 0;
	resp = MHD_create_response_from_buffer(len, (void *) (body ? body : ""), MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (content_type && len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (int i = 0; i < nheaders; i++)
		if (headers[i].name && headers[i].value)
			MHD_add_response_header(resp, headers[i].name, headers[i].value);
	reply_add_common(r, resp);
	res = MHD_queue_response(r->conn, (unsigned int) status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->replied = true;
	return res;
}

/* Sends a JSON value (and frees it). */
enum MHD_Result
reply_json(Request *r, int status, json_t *body)
{
	char	   *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	enum MHD_Result res;

	json_decref(body);
	if (text == NULL)
		return reply_error(r, 500, "PGRST000", "could not encode the response", NULL, NULL);
	res = reply(r, status, "application/json; charset=utf-8", text, strlen(text), NULL, 0);
	free(text);
	return res;
}

/* PostgREST's error body, with extra headers (WWW-Authenticate, Allow, Retry-After...). */
enum MHD_Result
reply_error_h(Request *r, int status, const char *code, const char *message, const char *details,
			  const char *hint, const ReplyHeader *headers, int nheaders)
{
	json_t	   *e = json_object();
	char	   *text;
	enum MHD_Result res;

	json_object_set_new(e, "code", code ? json_string(code) : json_null());
	json_object_set_new(e, "details", details ? json_string(details) : json_null());
	json_object_set_new(e, "hint", hint ? json_string(hint) : json_null());
	json_object_set_new(e, "message", json_string(message ? message : ""));
	text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	res = reply(r, status, "application/json; charset=utf-8", text ? text : "{}", text ? strlen(text) : 2,
				headers, nheaders);
	free(text);
	return res;
}

/* PostgREST's error body. */
enum MHD_Result
reply_error(Request *r, int status, const char *code, const char *message, const char *details,
			const char *hint)
{
	return reply_error_h(r, status, code, message, details, hint, NULL, 0);
}

/* 503 while the database cannot be reached, with Retry-After from the pool's backoff. */
enum MHD_Result
reply_unavailable(Request *r)
{
	char		retry[16];
	ReplyHeader h = {"Retry-After", retry};
	int			s = pool_retry_after_s();

	snprintf(retry, sizeof(retry), "%d", s > 0 ? s : 1);
	return reply_error_h(r, 503, "PGRST001", "Database client error. Retrying the connection.", NULL,
						 "The database cannot be reached now; retry after the time in Retry-After.", &h, 1);
}
