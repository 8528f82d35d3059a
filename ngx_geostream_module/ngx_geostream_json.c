/*
 * The strict JSON check every produce body (and every message read from
 * Kafka) passes before it is trusted: RFC 8259 exactly, and what cJSON
 * alone lets through refused, so that what Kafka stores is one
 * unambiguous JSON value:
 *   - strings are valid UTF-8 (no overlong form, no surrogate, nothing
 *     past U+10FFFF), with no raw control character and well-formed
 *     escapes (a \u surrogate only as a high-low pair);
 *   - no string holds U+0000: cJSON's strings end at a NUL, so a name
 *     "a\u0000b" would be keyed "a" and printed as "a";
 *   - no object names a member twice, escaped or not ("a" and "\u0061"
 *     are the same name): a last-wins reader would see another value than
 *     the one checked;
 *   - every number is a finite double (1e999 is not);
 *   - nothing but JSON's four whitespace bytes between tokens (cJSON skips
 *     any byte up to 0x20, NUL included), and no byte order mark.
 *
 * Plain C, like ngx_geostream_message.c.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"


/* as deep as cJSON goes (CJSON_NESTING_LIMIT) */
#define NGX_GEOSTREAM_JSON_DEPTH   1000

/* cJSON reads a number of at most 63 characters */
#define NGX_GEOSTREAM_JSON_NUMBER  63

/* members of the objects being read, kept on the stack until this many */
#define NGX_GEOSTREAM_JSON_KEYS    64


typedef struct {
    const unsigned char  *data;
    size_t                len;
} ngx_geostream_key_t;


typedef struct {
    const unsigned char    *start;
    const unsigned char    *p;
    const unsigned char    *last;
    ngx_geostream_error_t  *err;

    /* the member names of the objects open now, innermost last */
    ngx_geostream_key_t    *keys;
    size_t                  nkeys;
    size_t                  keys_max;
    ngx_geostream_key_t     keys0[NGX_GEOSTREAM_JSON_KEYS];

    /* decoded names of escaped members: no more than the body's bytes */
    unsigned char          *decoded;
    size_t                  decoded_len;
} ngx_geostream_json_t;


static int ngx_geostream_json_value(ngx_geostream_json_t *j, int depth);
static int ngx_geostream_json_object(ngx_geostream_json_t *j, int depth);
static int ngx_geostream_json_array(ngx_geostream_json_t *j, int depth);
static int ngx_geostream_json_string(ngx_geostream_json_t *j,
    ngx_geostream_key_t *key);
static int ngx_geostream_json_escape(ngx_geostream_json_t *j,
    const unsigned char **pp, int *up);
static unsigned char *ngx_geostream_utf8_put(unsigned char *d, int u);
static int ngx_geostream_json_number(ngx_geostream_json_t *j);
static int ngx_geostream_json_hex(const unsigned char *p);
static int ngx_geostream_json_key_cmp(const void *a, const void *b);
static void ngx_geostream_json_space(ngx_geostream_json_t *j);
static int ngx_geostream_json_malformed(ngx_geostream_json_t *j);
static int ngx_geostream_json_open(ngx_geostream_json_t *j, int depth,
    unsigned char close);
static int ngx_geostream_json_next(ngx_geostream_json_t *j,
    unsigned char close);


int
ngx_geostream_fail(ngx_geostream_error_t *err, const char *code,
    const char *fmt, ...)
{
    va_list  args;

    err->code = code;

    va_start(args, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, args);
    va_end(args);

    return -1;
}


int
ngx_geostream_json_check(const unsigned char *data, size_t len,
    ngx_geostream_error_t *err)
{
    int                   rc;
    ngx_geostream_json_t  j;

    memset(&j, 0, sizeof(ngx_geostream_json_t));

    j.start = data;
    j.p = data;
    j.last = data + len;
    j.err = err;
    j.keys = j.keys0;
    j.keys_max = NGX_GEOSTREAM_JSON_KEYS;

    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
        return ngx_geostream_fail(err, "invalid_json",
                                  "the body starts with a byte order "
                                  "mark; send UTF-8 without one");
    }

    ngx_geostream_json_space(&j);

    rc = ngx_geostream_json_value(&j, 0);

    if (rc == 0) {
        ngx_geostream_json_space(&j);

        if (j.p != j.last) {
            rc = ngx_geostream_fail(err, "invalid_json",
                                "unexpected data after the JSON value at "
                                "byte %zu", (size_t) (j.p - j.start));
        }
    }

    if (j.keys != j.keys0) {
        free(j.keys);
    }

    free(j.decoded);

    return rc;
}


static void
ngx_geostream_json_space(ngx_geostream_json_t *j)
{
    while (j->p < j->last
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
               || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
ngx_geostream_json_malformed(ngx_geostream_json_t *j)
{
    return ngx_geostream_fail(j->err, "invalid_json",
                              "malformed JSON at byte %zu",
                              (size_t) (j->p - j->start));
}


static int
ngx_geostream_json_value(ngx_geostream_json_t *j, int depth)
{
    size_t  n;

    if (j->p == j->last) {
        return ngx_geostream_json_malformed(j);
    }

    switch (*j->p) {

    case '{':
        return ngx_geostream_json_object(j, depth + 1);

    case '[':
        return ngx_geostream_json_array(j, depth + 1);

    case '"':
        return ngx_geostream_json_string(j, NULL);

    case 't':
    case 'f':
    case 'n':
        n = (*j->p == 'f') ? 5 : 4;

        if ((size_t) (j->last - j->p) < n
            || memcmp(j->p, (*j->p == 't') ? "true"
                            : (*j->p == 'f') ? "false" : "null", n) != 0)
        {
            return ngx_geostream_json_malformed(j);
        }

        j->p += n;
        return 0;

    default:
        return ngx_geostream_json_number(j);
    }
}


static int
ngx_geostream_json_object(ngx_geostream_json_t *j, int depth)
{
    int                   rc;
    size_t                base, i, n;
    ngx_geostream_key_t   key, *keys;

    rc = ngx_geostream_json_open(j, depth, '}');
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    base = j->nkeys;

    for ( ;; ) {
        if (j->p == j->last || *j->p != '"') {
            return ngx_geostream_json_malformed(j);
        }

        if (ngx_geostream_json_string(j, &key) != 0) {
            return -1;
        }

        if (j->nkeys == j->keys_max) {
            n = j->keys_max * 2;
            keys = malloc(n * sizeof(ngx_geostream_key_t));
            if (keys == NULL) {
                return ngx_geostream_fail(j->err, "internal_error",
                                          "out of memory");
            }

            memcpy(keys, j->keys, j->nkeys * sizeof(ngx_geostream_key_t));

            if (j->keys != j->keys0) {
                free(j->keys);
            }

            j->keys = keys;
            j->keys_max = n;
        }

        j->keys[j->nkeys++] = key;

        ngx_geostream_json_space(j);

        if (j->p == j->last || *j->p != ':') {
            return ngx_geostream_json_malformed(j);
        }

        j->p++;
        ngx_geostream_json_space(j);

        if (ngx_geostream_json_value(j, depth) != 0) {
            return -1;
        }

        rc = ngx_geostream_json_next(j, '}');
        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            break;
        }
    }

    /* sorted, a name given twice sits next to itself */
    n = j->nkeys - base;
    keys = j->keys + base;
    rc = 0;

    if (n > 1) {
        qsort(keys, n, sizeof(ngx_geostream_key_t),
              ngx_geostream_json_key_cmp);

        for (i = 1; i < n; i++) {
            if (ngx_geostream_json_key_cmp(&keys[i - 1], &keys[i]) == 0) {
                rc = ngx_geostream_fail(j->err, "invalid_json",
                                        "member \"%.*s\" is named "
                                        "twice",
                                        (int) ngx_geostream_utf8_cut(
                                            keys[i].data, keys[i].len,
                                            64),
                                        keys[i].data);
                break;
            }
        }
    }

    j->nkeys = base;

    return rc;
}


static int
ngx_geostream_json_key_cmp(const void *a, const void *b)
{
    int                         rc;
    const ngx_geostream_key_t  *ka, *kb;

    ka = a;
    kb = b;

    rc = memcmp(ka->data, kb->data, ka->len < kb->len ? ka->len : kb->len);

    if (rc != 0) {
        return rc;
    }

    return (ka->len > kb->len) - (ka->len < kb->len);
}


static int
ngx_geostream_json_array(ngx_geostream_json_t *j, int depth)
{
    int  rc;

    rc = ngx_geostream_json_open(j, depth, ']');
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    for ( ;; ) {
        if (ngx_geostream_json_value(j, depth) != 0) {
            return -1;
        }

        rc = ngx_geostream_json_next(j, ']');
        if (rc <= 0) {
            return rc;
        }
    }
}


/*
 * Enters the object or array at "j->p" ('{' or '['): 1 when it is empty
 * (and left already), 0 when values follow, -1 when it is nested too deep.
 */
static int
ngx_geostream_json_open(ngx_geostream_json_t *j, int depth,
    unsigned char close)
{
    if (depth > NGX_GEOSTREAM_JSON_DEPTH) {
        return ngx_geostream_fail(j->err, "invalid_json",
                                  "JSON nested deeper than %d at byte "
                                  "%zu", NGX_GEOSTREAM_JSON_DEPTH,
                                  (size_t) (j->p - j->start));
    }

    j->p++;
    ngx_geostream_json_space(j);

    if (j->p < j->last && *j->p == close) {
        j->p++;
        return 1;
    }

    return 0;
}


/*
 * After a value of an object or array: 1 on a ',' (another follows), 0
 * on "close" (the object or array is left), -1 on anything else.
 */
static int
ngx_geostream_json_next(ngx_geostream_json_t *j, unsigned char close)
{
    ngx_geostream_json_space(j);

    if (j->p < j->last && *j->p == ',') {
        j->p++;
        ngx_geostream_json_space(j);
        return 1;
    }

    if (j->p == j->last || *j->p != close) {
        return ngx_geostream_json_malformed(j);
    }

    j->p++;

    return 0;
}


/* the value of four hex digits, or -1 */
static int
ngx_geostream_json_hex(const unsigned char *p)
{
    int            i, u;
    unsigned char  c;

    u = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];
        u <<= 4;

        if (c >= '0' && c <= '9') {
            u |= c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            u |= (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }
    }

    return u;
}


/*
 * The escape at "*p" (a backslash) in a string: its character in "*u",
 * surrogate pairs joined, and "*p" past it; -1 and the error when it is
 * malformed, a NUL, or half of a surrogate pair.
 */
static int
ngx_geostream_json_escape(ngx_geostream_json_t *j, const unsigned char **pp,
    int *up)
{
    int                   u, lo;
    const unsigned char  *p;

    p = *pp;

    if (j->last - p < 2) {
        j->p = j->last;
        return ngx_geostream_json_malformed(j);
    }

    switch (p[1]) {

    case '"': case '\\': case '/':
        u = p[1];
        p += 2;
        break;

    case 'b': u = '\b'; p += 2; break;
    case 'f': u = '\f'; p += 2; break;
    case 'n': u = '\n'; p += 2; break;
    case 'r': u = '\r'; p += 2; break;
    case 't': u = '\t'; p += 2; break;

    case 'u':
        u = (j->last - p >= 6) ? ngx_geostream_json_hex(p + 2) : -1;

        if (u < 0) {
            j->p = p;
            return ngx_geostream_json_malformed(j);
        }

        if (u == 0) {
            return ngx_geostream_fail(j->err, "invalid_json",
                                      "\\u0000 in a string at byte "
                                      "%zu: no string may hold a "
                                      "NUL", (size_t) (p - j->start));
        }

        if (u >= 0xdc00 && u <= 0xdfff) {
            return ngx_geostream_fail(j->err, "invalid_json",
                                      "a lone low surrogate (\\u%04x)"
                                      " at byte %zu", u,
                                      (size_t) (p - j->start));
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            lo = (j->last - p >= 12 && p[6] == '\\' && p[7] == 'u')
                 ? ngx_geostream_json_hex(p + 8) : -1;

            if (lo < 0xdc00 || lo > 0xdfff) {
                return ngx_geostream_fail(j->err, "invalid_json",
                                          "a high surrogate "
                                          "(\\u%04x) without its low "
                                          "one at byte %zu", u,
                                          (size_t) (p - j->start));
            }

            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }

        p += 6;
        break;

    default:
        j->p = p;
        return ngx_geostream_json_malformed(j);
    }

    *pp = p;
    *up = u;

    return 0;
}


/* the UTF-8 of the character "u" (below U+110000) at "d"; its end */
static unsigned char *
ngx_geostream_utf8_put(unsigned char *d, int u)
{
    if (u < 0x80) {
        *d++ = (unsigned char) u;

    } else if (u < 0x800) {
        *d++ = (unsigned char) (0xc0 | (u >> 6));
        *d++ = (unsigned char) (0x80 | (u & 0x3f));

    } else if (u < 0x10000) {
        *d++ = (unsigned char) (0xe0 | (u >> 12));
        *d++ = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
        *d++ = (unsigned char) (0x80 | (u & 0x3f));

    } else {
        *d++ = (unsigned char) (0xf0 | (u >> 18));
        *d++ = (unsigned char) (0x80 | ((u >> 12) & 0x3f));
        *d++ = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
        *d++ = (unsigned char) (0x80 | (u & 0x3f));
    }

    return d;
}


/*
 * A string; a member name ("key" not NULL) is also decoded, into the
 * shared buffer when it has escapes, so that names compare as characters.
 */
static int
ngx_geostream_json_string(ngx_geostream_json_t *j, ngx_geostream_key_t *key)
{
    int                   u;
    size_t                n;
    unsigned char        *d;
    const unsigned char  *p, *start;

    p = j->p + 1;
    start = p;
    d = NULL;
    u = 0;

    while (p < j->last && *p != '"') {

        if (*p < 0x20) {
            j->p = p;
            return ngx_geostream_fail(j->err, "invalid_json",
                                      "a control character (0x%02x) "
                                      "in a string at byte %zu; "
                                      "escape it", *p,
                                      (size_t) (p - j->start));
        }

        if (*p >= 0x80) {
            n = ngx_geostream_utf8_char(p, j->last - p);

            if (n == 0) {
                return ngx_geostream_fail(j->err, "invalid_json",
                                          "invalid UTF-8 at byte %zu",
                                          (size_t) (p - j->start));
            }

            if (d) {
                memcpy(d, p, n);
                d += n;
            }

            p += n;
            continue;
        }

        if (*p != '\\') {
            if (d) {
                *d++ = *p;
            }

            p++;
            continue;
        }

        if (key != NULL && d == NULL) {
            /* the first escape of a name: decode it from here on */
            if (j->decoded == NULL) {
                j->decoded = malloc(j->last - j->start);
                if (j->decoded == NULL) {
                    return ngx_geostream_fail(j->err, "internal_error",
                                              "out of memory");
                }
            }

            d = j->decoded + j->decoded_len;
            memcpy(d, start, p - start);
            d += p - start;
        }

        if (ngx_geostream_json_escape(j, &p, &u) != 0) {
            return -1;
        }

        if (d) {
            d = ngx_geostream_utf8_put(d, u);
        }
    }

    if (p >= j->last) {
        j->p = j->last;
        return ngx_geostream_json_malformed(j);
    }

    if (key != NULL) {
        if (d) {
            key->data = j->decoded + j->decoded_len;
            key->len = d - key->data;
            j->decoded_len += key->len;

        } else {
            key->data = start;
            key->len = p - start;
        }
    }

    j->p = p + 1;

    return 0;
}


/*
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, finite as a double.
 */
static int
ngx_geostream_json_number(ngx_geostream_json_t *j)
{
    char                  text[NGX_GEOSTREAM_JSON_NUMBER + 1];
    size_t                len;
    const unsigned char  *p, *last;

    p = j->p;
    last = j->last;

    if (p < last && *p == '-') {
        p++;
    }

    if (p == last || *p < '0' || *p > '9') {
        j->p = p;
        return ngx_geostream_json_malformed(j);
    }

    if (*p == '0') {
        p++;

    } else {
        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < last && *p == '.') {
        if (++p == last || *p < '0' || *p > '9') {
            j->p = p;
            return ngx_geostream_json_malformed(j);
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        if (++p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == last || *p < '0' || *p > '9') {
            j->p = p;
            return ngx_geostream_json_malformed(j);
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    len = p - j->p;

    if (len > NGX_GEOSTREAM_JSON_NUMBER) {
        return ngx_geostream_fail(j->err, "invalid_json",
                                  "a number longer than %d characters "
                                  "at byte %zu",
                                  NGX_GEOSTREAM_JSON_NUMBER,
                                  (size_t) (j->p - j->start));
    }

    /* nginx never calls setlocale(): the decimal point is '.' */
    memcpy(text, j->p, len);
    text[len] = '\0';

    if (!isfinite(strtod(text, NULL))) {
        return ngx_geostream_fail(j->err, "invalid_json",
                                  "the number at byte %zu is not a "
                                  "finite double",
                                  (size_t) (j->p - j->start));
    }

    j->p = p;

    return 0;
}


const unsigned char *
ngx_geostream_json_skip(const unsigned char *p, const unsigned char *last)
{
    size_t  depth;

    depth = 0;

    while (p < last) {
        switch (*p) {

        case '"':
            for (p++; p < last && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                }
            }

            p++;
            break;

        case '{':
        case '[':
            depth++;
            p++;
            break;

        case '}':
        case ']':
            if (depth == 0) {
                return p;               /* the end of the enclosing one */
            }

            depth--;
            p++;
            break;

        case ',':
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            if (depth == 0) {
                return p;
            }

            p++;
            break;

        default:
            p++;                        /* a number's or a literal's */
            continue;
        }

        if (depth == 0) {
            return p;
        }
    }

    return p;
}


/*
 * The length of the UTF-8 character at "p" (1 to 4), or 0 when the bytes
 * there are not one: a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, or a truncated sequence.
 */
size_t
ngx_geostream_utf8_char(const unsigned char *p, size_t len)
{
    size_t         n, i;
    unsigned char  c, lo, hi;

    if (len == 0) {
        return 0;
    }

    c = p[0];
    lo = 0x80;
    hi = 0xbf;

    if (c < 0x80) {
        return 1;

    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;                  /* not overlong */

        } else if (c == 0xed) {
            hi = 0x9f;                  /* not a surrogate */
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;                  /* not overlong */

        } else if (c == 0xf4) {
            hi = 0x8f;                  /* not past U+10FFFF */
        }

    } else {
        return 0;
    }

    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


int
ngx_geostream_utf8_valid(const unsigned char *p, size_t len)
{
    size_t  n;

    while (len) {
        n = ngx_geostream_utf8_char(p, len);

        if (n == 0) {
            return 0;
        }

        p += n;
        len -= n;
    }

    return 1;
}


int
ngx_geostream_utf8_has_control(const unsigned char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f
            || (p[i] == 0xc2 && i + 1 < len && p[i + 1] < 0xa0))
        {
            return 1;                   /* C0, DEL or C1 */
        }
    }

    return 0;
}


size_t
ngx_geostream_utf8_cut(const unsigned char *p, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }

    /* not in the middle of a character */
    while (max > 0 && (p[max] & 0xc0) == 0x80) {
        max--;
    }

    return max;
}
