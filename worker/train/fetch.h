/*
 * fetch.h — download a dataset into memory, within the node's limits.
 */
#ifndef MM_FETCH_H
#define MM_FETCH_H

#include "mmtrain.h"

#include <stddef.h>

/*
 * Fetch url (file://, http:// or https://) into a new NUL-terminated
 * buffer (*data, caller frees; *len excludes the NUL). lim may be NULL.
 * http(s) connects only to addresses mm_addr_refusal() lets through: public
 * ones and those in lim->allow_net; file:// only below lim->file_root.
 * Messages show the URL without credentials or query string and never
 * include the body.
 */
int			mm_fetch(const char *url, const mm_limits *lim, char **data, size_t *len,
					 char *err, size_t errlen);

/* The URL as shown in messages: user:password and ?query removed, sanitised, shortened. */
void		mm_fetch_show_url(char *out, size_t outlen, const char *url);

#endif							/* MM_FETCH_H */
