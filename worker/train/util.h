/*
 * util.h — error-message helpers shared by the training library.
 *
 * Every function that can fail takes (char *err, size_t errlen) and writes
 * one line there. Text that came from a job (URLs, column names) goes
 * through mm_sanitize first so a message stays one printable line.
 */
#ifndef MM_UTIL_H
#define MM_UTIL_H

#include <stddef.h>

/* snprintf into err when err is usable; always returns -1 for "return mm_err(...)". */
int			mm_err(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * Copy at most maxchars bytes of src into dst (size dstlen), replacing
 * control characters by '?' and marking truncation with "...". Returns dst.
 */
char	   *mm_sanitize(char *dst, size_t dstlen, const char *src, size_t maxchars);

#endif							/* MM_UTIL_H */
