/* text.h - text from outside made safe to print (file names, config values, labels
 * in messages) or to put in JSON (run records, predict --json, export manifests). */
#ifndef FF_TEXT_H
#define FF_TEXT_H

#include <stddef.h>

/* text (len bytes, any bytes) as something safe to print: valid UTF-8 of printable
 * characters as is, every other byte (control characters, escape sequences, invalid
 * UTF-8) as \xHH and a backslash as \\; into out (cap bytes, NUL-terminated, cut at a
 * whole character). Returns the length written. */
size_t ff_text_escape(const char *text, size_t len, char *out, size_t cap);

/* s as a JSON string: in quotes, '"' and '\\' backslash-escaped, control characters as
 * \uXXXX (other bytes as they are). Into out (cap bytes, NUL-terminated, cut at a whole
 * escape; out may be NULL with cap 0); returns the length of the whole quoted string, as
 * snprintf does, so a caller can size a buffer with a first call. */
size_t ff_text_json_quote(const char *s, char *out, size_t cap);

/* The same, whole, in a malloc'ed string the caller frees (NULL without memory). */
char *ff_text_json_quoted(const char *s);

#endif
