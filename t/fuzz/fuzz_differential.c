/*
 * libFuzzer target: the same bytes to the body's two readers (the one-pass
 * scanner, ngx_geostream_position_scan(), and the cJSON path,
 * ngx_geostream_position_parse() with its strict check) and to a strict
 * reference written here apart from both, slowly and plainly: RFC 8259,
 * strings decoded to code points (valid UTF-8, no surrogate, no U+0000),
 * member names compared as code points, numbers finite doubles of at most
 * 63 characters (cJSON reads no more), nesting at most 1000 (cJSON's
 * limit), no byte order mark.
 *
 * It fails on any body one accepts and another refuses:
 *   - the strict check accepts exactly what the reference accepts;
 *   - what the reference refuses, both readers refuse (the cJSON path
 *     with invalid_json, the batch reader too);
 *   - what the reference accepts, the cJSON path refuses only as a
 *     message (invalid_message), never as JSON;
 *   - what the scanner takes, the cJSON path takes, reading the same.
 */

#include "fuzz.h"


#define REF_DEPTH   1000
#define REF_NUMBER  63


typedef struct {
    const unsigned char  *p;
    const unsigned char  *last;
} ref_t;


/* a decoded string: its code points */
typedef struct {
    uint32_t  *cp;
    size_t     n;
} ref_str_t;


static int ref_value(ref_t *r, int depth);


static void
ref_ws(ref_t *r)
{
    while (r->p < r->last && strchr(" \t\r\n", *r->p) != NULL
           && *r->p != '\0')
    {
        r->p++;
    }
}


/* one UTF-8 character, decoded, then held to its shortest form */
static int
ref_utf8(ref_t *r, uint32_t *cp)
{
    int            n, i;
    uint32_t       c;
    unsigned char  b;

    b = *r->p;

    if (b < 0x80) {
        *cp = b;
        r->p++;
        return 0;
    }

    if ((b & 0xe0) == 0xc0) {
        n = 2;
        c = b & 0x1f;

    } else if ((b & 0xf0) == 0xe0) {
        n = 3;
        c = b & 0x0f;

    } else if ((b & 0xf8) == 0xf0) {
        n = 4;
        c = b & 0x07;

    } else {
        return -1;
    }

    if (r->last - r->p < n) {
        return -1;
    }

    for (i = 1; i < n; i++) {
        if ((r->p[i] & 0xc0) != 0x80) {
            return -1;
        }

        c = (c << 6) | (r->p[i] & 0x3f);
    }

    if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800)
        || (n == 4 && c < 0x10000) || c > 0x10ffff
        || (c >= 0xd800 && c <= 0xdfff))
    {
        return -1;
    }

    *cp = c;
    r->p += n;

    return 0;
}


static int
ref_hex4(ref_t *r, uint32_t *v)
{
    int   i;
    char  buf[5], *end;

    if (r->last - r->p < 4) {
        return -1;
    }

    for (i = 0; i < 4; i++) {
        if (strchr("0123456789abcdefABCDEF", r->p[i]) == NULL
            || r->p[i] == '\0')
        {
            return -1;
        }

        buf[i] = (char) r->p[i];
    }

    buf[4] = '\0';
    *v = (uint32_t) strtoul(buf, &end, 16);
    r->p += 4;

    return 0;
}


static int
ref_string(ref_t *r, ref_str_t *out)
{
    uint32_t   c, lo;
    uint32_t  *cp;
    size_t     n;

    if (r->p == r->last || *r->p != '"') {
        return -1;
    }

    r->p++;

    /* no more code points than bytes */
    cp = malloc((r->last - r->p + 1) * sizeof(uint32_t));
    fuzz_assert(cp != NULL);
    n = 0;

    for ( ;; ) {
        if (r->p == r->last) {
            goto bad;
        }

        if (*r->p == '"') {
            r->p++;
            break;
        }

        if (*r->p < 0x20) {
            goto bad;
        }

        if (*r->p != '\\') {
            if (ref_utf8(r, &c) != 0) {
                goto bad;
            }

            cp[n++] = c;
            continue;
        }

        r->p++;

        if (r->p == r->last) {
            goto bad;
        }

        switch (*r->p++) {
        case '"':  c = '"'; break;
        case '\\': c = '\\'; break;
        case '/':  c = '/'; break;
        case 'b':  c = 8; break;
        case 'f':  c = 12; break;
        case 'n':  c = 10; break;
        case 'r':  c = 13; break;
        case 't':  c = 9; break;

        case 'u':
            if (ref_hex4(r, &c) != 0) {
                goto bad;
            }

            if (c >= 0xdc00 && c <= 0xdfff) {
                goto bad;
            }

            if (c >= 0xd800 && c <= 0xdbff) {
                if (r->last - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                {
                    goto bad;
                }

                r->p += 2;

                if (ref_hex4(r, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    goto bad;
                }

                c = 0x10000 + (((c - 0xd800) << 10) | (lo - 0xdc00));
            }

            break;

        default:
            goto bad;
        }

        cp[n++] = c;
    }

    /* no string may hold U+0000 */
    for (size_t i = 0; i < n; i++) {
        if (cp[i] == 0) {
            goto bad;
        }
    }

    if (out) {
        out->cp = cp;
        out->n = n;

    } else {
        free(cp);
    }

    return 0;

bad:

    free(cp);

    return -1;
}


static int
ref_digits(ref_t *r)
{
    const unsigned char  *start;

    start = r->p;

    while (r->p < r->last && *r->p >= '0' && *r->p <= '9') {
        r->p++;
    }

    return (r->p > start) ? 0 : -1;
}


static int
ref_number(ref_t *r)
{
    char                  buf[REF_NUMBER + 1];
    size_t                len;
    const unsigned char  *start;

    start = r->p;

    if (r->p < r->last && *r->p == '-') {
        r->p++;
    }

    if (r->p < r->last && *r->p == '0') {
        r->p++;

    } else if (r->p == r->last || *r->p < '1' || *r->p > '9'
               || ref_digits(r) != 0)
    {
        return -1;
    }

    if (r->p < r->last && *r->p == '.') {
        r->p++;

        if (ref_digits(r) != 0) {
            return -1;
        }
    }

    if (r->p < r->last && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;

        if (r->p < r->last && (*r->p == '+' || *r->p == '-')) {
            r->p++;
        }

        if (ref_digits(r) != 0) {
            return -1;
        }
    }

    len = r->p - start;

    if (len > REF_NUMBER) {
        return -1;
    }

    memcpy(buf, start, len);
    buf[len] = '\0';

    return isfinite(strtod(buf, NULL)) ? 0 : -1;
}


static int
ref_same(const ref_str_t *a, const ref_str_t *b)
{
    return a->n == b->n && memcmp(a->cp, b->cp, a->n * sizeof(uint32_t)) == 0;
}


static int
ref_object(ref_t *r, int depth)
{
    int         rc;
    size_t      n, i, j;
    ref_str_t  *names, *more;

    if (depth > REF_DEPTH) {
        return -1;
    }

    r->p++;
    ref_ws(r);

    if (r->p < r->last && *r->p == '}') {
        r->p++;
        return 0;
    }

    names = NULL;
    n = 0;
    rc = -1;

    for ( ;; ) {
        more = realloc(names, (n + 1) * sizeof(ref_str_t));
        fuzz_assert(more != NULL);
        names = more;

        if (ref_string(r, &names[n]) != 0) {
            goto done;
        }

        n++;
        ref_ws(r);

        if (r->p == r->last || *r->p++ != ':') {
            goto done;
        }

        ref_ws(r);

        if (ref_value(r, depth) != 0) {
            goto done;
        }

        ref_ws(r);

        if (r->p < r->last && *r->p == ',') {
            r->p++;
            ref_ws(r);
            continue;
        }

        if (r->p < r->last && *r->p == '}') {
            r->p++;
            break;
        }

        goto done;
    }

    /* every pair of names: slow, and plainly right */
    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            if (ref_same(&names[i], &names[j])) {
                goto done;
            }
        }
    }

    rc = 0;

done:

    for (i = 0; i < n; i++) {
        free(names[i].cp);
    }

    free(names);

    return rc;
}


static int
ref_array(ref_t *r, int depth)
{
    if (depth > REF_DEPTH) {
        return -1;
    }

    r->p++;
    ref_ws(r);

    if (r->p < r->last && *r->p == ']') {
        r->p++;
        return 0;
    }

    for ( ;; ) {
        if (ref_value(r, depth) != 0) {
            return -1;
        }

        ref_ws(r);

        if (r->p < r->last && *r->p == ',') {
            r->p++;
            ref_ws(r);
            continue;
        }

        if (r->p < r->last && *r->p == ']') {
            r->p++;
            return 0;
        }

        return -1;
    }
}


static int
ref_literal(ref_t *r, const char *word)
{
    size_t  n;

    n = strlen(word);

    if ((size_t) (r->last - r->p) < n || memcmp(r->p, word, n) != 0) {
        return -1;
    }

    r->p += n;

    return 0;
}


static int
ref_value(ref_t *r, int depth)
{
    if (r->p == r->last) {
        return -1;
    }

    switch (*r->p) {
    case '{':
        return ref_object(r, depth + 1);
    case '[':
        return ref_array(r, depth + 1);
    case '"':
        return ref_string(r, NULL);
    case 't':
        return ref_literal(r, "true");
    case 'f':
        return ref_literal(r, "false");
    case 'n':
        return ref_literal(r, "null");
    default:
        return ref_number(r);
    }
}


/* 1 when "data" is one strict JSON value */
static int
ref_valid(const unsigned char *data, size_t size)
{
    ref_t  r;

    r.p = data;
    r.last = data + size;

    ref_ws(&r);

    if (ref_value(&r, 0) != 0) {
        return 0;
    }

    ref_ws(&r);

    return r.p == r.last;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        ref, batch;
    size_t                     n;
    ngx_geostream_error_t      err;
    ngx_geostream_record_t    *records;
    ngx_geostream_position_t   pos, fast;

    ref = ref_valid(data, size);

    /* the strict check is the reference */
    fuzz_assert(ref == (ngx_geostream_json_check(data, size, &err) == 0));

    if (ngx_geostream_position_parse(&pos, data, size, &err) == 0) {
        fuzz_assert(ref);
        ngx_geostream_position_free(&pos);

    } else {
        /* bad JSON is refused as JSON; good JSON only as a message */
        fuzz_assert(ref == (strcmp(err.code, "invalid_json") != 0)
                    || size == 0);
    }

    if (ngx_geostream_position_scan(&fast, data, size) == 0) {
        fuzz_assert(ref);
        fuzz_same_as_cjson(&fast, data, size);
    }

    /* a batch is no laxer */
    if (ngx_geostream_records_parse(&records, &n, &batch, data, size, 0,
                                    &err)
        == 0)
    {
        fuzz_assert(ref);
        ngx_geostream_records_free(records, n);

    } else if (!ref) {
        fuzz_assert(strcmp(err.code, "invalid_json") == 0);
    }

    return 0;
}
