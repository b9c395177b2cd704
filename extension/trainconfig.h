/*
 * trainconfig.h — what configcheck.c (the backend) calls of the workers' validator (trainconfig.c),
 * in plain C types: Jansson's and PostgreSQL's headers cannot meet in one file.
 */
#ifndef MM_TRAINCONFIG_H
#define MM_TRAINCONFIG_H

#include <stddef.h>

void		mm_tc_begin(void *(*alloc) (size_t), void (*release) (void *));
void		mm_tc_end(void);
int			mm_tc_check(const char *text, char *err, size_t errlen);
char	   *mm_tc_schema(void);
int			mm_tc_schema_version(void);

#endif							/* MM_TRAINCONFIG_H */
