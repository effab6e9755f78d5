/* text.c - text made safe to print or to put in JSON (include/ff/text.h). */
#include "ff/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (at most n bytes) of a code point that
 * is printable enough to show (not C0/C1 control, DEL, a surrogate); 0 if not one. */
static size_t showable_utf8(const unsigned char *s, size_t n)
{
    if (s[0] >= 0x20 && s[0] < 0x7f)
        return 1;
    const size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!len || len > n || s[0] >= 0xf8)
        return 0;
    unsigned cp = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
        return 0;
    return len;
}

size_t ff_text_escape(const char *text, size_t len, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < len;) {
        const size_t k = s[i] == '\\' ? 0 : showable_utf8(s + i, len - i);
        if (k && n + k < cap) {
            memcpy(out + n, s + i, k);
            n += k;
            i += k;
        } else if (!k && n + 4 < cap) {
            snprintf(out + n, cap - n, s[i] == '\\' ? "\\\\" : "\\x%02x", s[i]);
            n += s[i] == '\\' ? 2 : 4;
            i++;
        } else {
            break; /* full: cut at a whole character */
        }
    }
    out[n] = '\0';
    return n;
}

/* appends piece (k bytes) to out if it fits whole and nothing was cut before it */
static void json_piece(char *out, size_t cap, size_t *n, int *cut, const char *piece, size_t k)
{
    if (!*cut && out && *n + k < cap) {
        memcpy(out + *n, piece, k);
        out[*n + k] = '\0';
    } else {
        *cut = 1;
    }
    *n += k;
}

size_t ff_text_json_quote(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    int cut = 0;
    char e[8];
    if (out && cap)
        out[0] = '\0';
    json_piece(out, cap, &n, &cut, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            snprintf(e, sizeof e, "\\%c", *p);
        else if (*p < 0x20)
            snprintf(e, sizeof e, "\\u%04x", *p);
        else
            e[0] = (char)*p, e[1] = '\0';
        json_piece(out, cap, &n, &cut, e, strlen(e));
    }
    json_piece(out, cap, &n, &cut, "\"", 1);
    return n;
}

char *ff_text_json_quoted(const char *s)
{
    const size_t n = ff_text_json_quote(s, NULL, 0);
    char *q = malloc(n + 1);
    if (q)
        ff_text_json_quote(s, q, n + 1);
    return q;
}
