/*
 * The produce path's fast reader: one pass over the most common body, a
 * single flat position object, without building a cJSON tree.
 *
 * It accepts only what it can read exactly as the cJSON path
 * (ngx_geostream_position_parse()) does, with the same result, and only
 * what that path's strict check (ngx_geostream_json.c) passes: strict
 * JSON with valid UTF-8 and no U+0000, a name and a string message_id
 * without escapes, a name without control characters, a message_id or ts
 * that is a plain integer, no "type" member, numbers that are finite
 * doubles, no member named twice.  Other members are at most
 * NGX_GEOSTREAM_SCAN_MEMBERS, with names without escapes, and hold no
 * object (whose own members would need the same check).  Anything else,
 * valid or not, is left to the cJSON path, which also words the errors.
 * The fuzzers hold the two paths to that (t/fuzz/fuzz_differential.c).
 *
 * Plain C, like ngx_geostream_message.c.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"


/* deeper members are left to cJSON */
#define NGX_GEOSTREAM_SCAN_DEPTH  32

/* a number longer than this is refused by cJSON, which reads 63 */
#define NGX_GEOSTREAM_SCAN_NUMBER  63

/* members other than the position's own compared for twins */
#define NGX_GEOSTREAM_SCAN_MEMBERS  16


/* the position's own members, a bit each, to refuse one named twice */
#define NGX_GEOSTREAM_SCAN_NAME    0x01
#define NGX_GEOSTREAM_SCAN_LAT     0x02
#define NGX_GEOSTREAM_SCAN_LON     0x04
#define NGX_GEOSTREAM_SCAN_ID      0x08
#define NGX_GEOSTREAM_SCAN_TS      0x10
#define NGX_GEOSTREAM_SCAN_NEEDED                                            \
    (NGX_GEOSTREAM_SCAN_NAME | NGX_GEOSTREAM_SCAN_LAT | NGX_GEOSTREAM_SCAN_LON)

/* ngx_geostream_scan_member(): "key" is not one of the position's own */
#define NGX_GEOSTREAM_SCAN_OTHER   1


typedef struct {
    const unsigned char  *data;
    size_t                len;
} ngx_geostream_name_span_t;


typedef struct {
    const unsigned char        *p;
    const unsigned char        *last;

    /* the names of the other members so far */
    size_t                      nothers;
    ngx_geostream_name_span_t   others[NGX_GEOSTREAM_SCAN_MEMBERS];
} ngx_geostream_scan_t;


/* what a number's text is, besides its value */
typedef struct {
    const unsigned char  *start;
    size_t                len;
    unsigned              integer:1;     /* no fraction, no exponent */
} ngx_geostream_number_t;


static int ngx_geostream_scan_member(ngx_geostream_scan_t *s,
    ngx_geostream_position_t *pos, const unsigned char *key, size_t key_len,
    unsigned *seen);
static int ngx_geostream_scan_message_id(ngx_geostream_scan_t *s,
    ngx_geostream_position_t *pos);
static int ngx_geostream_scan_other(ngx_geostream_scan_t *s,
    const unsigned char *key, size_t key_len);
static void ngx_geostream_scan_space(ngx_geostream_scan_t *s);
static int ngx_geostream_scan_string(ngx_geostream_scan_t *s,
    const unsigned char **start, size_t *len, int *escaped);
static int ngx_geostream_scan_number(ngx_geostream_scan_t *s,
    ngx_geostream_number_t *num, double *value);
static int ngx_geostream_scan_double(const ngx_geostream_number_t *num,
    uint64_t mantissa, int digits, int exp, double *value);
static int ngx_geostream_scan_value(ngx_geostream_scan_t *s, int depth);
static int ngx_geostream_scan_literal(ngx_geostream_scan_t *s,
    const char *literal);


/* exact powers of ten as doubles: 10^22 is the last one */
static const double  ngx_geostream_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};


int
ngx_geostream_position_scan(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len)
{
    int                    escaped, rc;
    size_t                 key_len;
    unsigned               seen;
    const unsigned char   *key;
    ngx_geostream_scan_t   s;

    memset(pos, 0, sizeof(ngx_geostream_position_t));
    pos->ts = -1;

    s.p = data;
    s.last = data + len;
    s.nothers = 0;
    seen = 0;

    ngx_geostream_scan_space(&s);

    if (s.p == s.last || *s.p++ != '{') {
        return -1;
    }

    ngx_geostream_scan_space(&s);

    for ( ;; ) {
        if (ngx_geostream_scan_string(&s, &key, &key_len, &escaped) != 0
            || escaped)
        {
            return -1;
        }

        ngx_geostream_scan_space(&s);

        if (s.p == s.last || *s.p++ != ':') {
            return -1;
        }

        ngx_geostream_scan_space(&s);

        rc = ngx_geostream_scan_member(&s, pos, key, key_len, &seen);

        if (rc == NGX_GEOSTREAM_SCAN_OTHER) {
            rc = ngx_geostream_scan_other(&s, key, key_len);
        }

        if (rc != 0) {
            return -1;
        }

        ngx_geostream_scan_space(&s);

        if (s.p == s.last) {
            return -1;
        }

        if (*s.p == ',') {
            s.p++;
            ngx_geostream_scan_space(&s);
            continue;
        }

        if (*s.p++ != '}') {
            return -1;
        }

        break;
    }

    ngx_geostream_scan_space(&s);

    if (s.p != s.last || (seen & NGX_GEOSTREAM_SCAN_NEEDED)
                         != NGX_GEOSTREAM_SCAN_NEEDED)
    {
        return -1;
    }

    return 0;
}


/*
 * One of the position's own members, each at most once: 0 when read, -1
 * when the cJSON path must decide, NGX_GEOSTREAM_SCAN_OTHER when "key" is
 * none of them.  The values keep the position rules of
 * ngx_geostream_message.c, and, where the answer gives a value back as
 * sent, are as cJSON would print them.
 */
static int
ngx_geostream_scan_member(ngx_geostream_scan_t *s,
    ngx_geostream_position_t *pos, const unsigned char *key, size_t key_len,
    unsigned *seen)
{
    int                      escaped;
    size_t                   value_len;
    double                   d;
    unsigned                 member;
    const unsigned char     *value;
    ngx_geostream_error_t    err;
    ngx_geostream_number_t   num;

#define ngx_geostream_key_is(name)                                           \
    (key_len == sizeof(name) - 1 && memcmp(key, name, key_len) == 0)

    if (ngx_geostream_key_is("name")) {
        member = NGX_GEOSTREAM_SCAN_NAME;

    } else if (ngx_geostream_key_is("lat")) {
        member = NGX_GEOSTREAM_SCAN_LAT;

    } else if (ngx_geostream_key_is("lon")) {
        member = NGX_GEOSTREAM_SCAN_LON;

    } else if (ngx_geostream_key_is("message_id")) {
        member = NGX_GEOSTREAM_SCAN_ID;

    } else if (ngx_geostream_key_is("ts")) {
        member = NGX_GEOSTREAM_SCAN_TS;

    } else if (ngx_geostream_key_is("type")) {
        /* perhaps a GeoJSON Feature: the cJSON path knows */
        return -1;

    } else {
        return NGX_GEOSTREAM_SCAN_OTHER;
    }

#undef ngx_geostream_key_is

    if (*seen & member) {
        return -1;
    }

    *seen |= member;

    switch (member) {

    case NGX_GEOSTREAM_SCAN_NAME:
        if (ngx_geostream_scan_string(s, &value, &value_len, &escaped) != 0
            || escaped
            || ngx_geostream_name_check((const char *) value, value_len,
                                        &err) != 0)
        {
            return -1;
        }

        pos->name = (const char *) value;
        pos->name_len = value_len;

        return 0;

    case NGX_GEOSTREAM_SCAN_LAT:
        return (ngx_geostream_scan_number(s, &num, &pos->lat) != 0
                || ngx_geostream_lat_check(pos->lat, "\"lat\"", &err) != 0)
               ? -1 : 0;

    case NGX_GEOSTREAM_SCAN_LON:
        return (ngx_geostream_scan_number(s, &num, &pos->lon) != 0
                || ngx_geostream_lon_check(pos->lon, "\"lon\"", &err) != 0)
               ? -1 : 0;

    case NGX_GEOSTREAM_SCAN_ID:
        return ngx_geostream_scan_message_id(s, pos);

    default: /* NGX_GEOSTREAM_SCAN_TS */
        if (ngx_geostream_scan_number(s, &num, &d) != 0
            || !num.integer || ngx_geostream_ts_check(d, &err) != 0)
        {
            return -1;
        }

        pos->ts = (int64_t) d;

        return 0;
    }
}


/* a message_id, kept as its text when cJSON prints it the same way */
static int
ngx_geostream_scan_message_id(ngx_geostream_scan_t *s,
    ngx_geostream_position_t *pos)
{
    int                      escaped;
    size_t                   value_len;
    double                   d;
    const unsigned char     *value, *text;
    ngx_geostream_number_t   num;

    if (s->p == s->last) {
        return -1;
    }

    if (*s->p == '"') {
        text = s->p;

        if (ngx_geostream_scan_string(s, &value, &value_len, &escaped) != 0
            || escaped)
        {
            return -1;
        }

        /* the string as sent is the string as cJSON prints it */
        pos->message_id_text = (const char *) text;
        pos->message_id_text_len = s->p - text;

        return 0;
    }

    /* an integer as sent, when cJSON prints it the same way */
    if (ngx_geostream_scan_number(s, &num, &d) != 0
        || !num.integer || num.len > 15
        || (num.len == 2 && num.start[0] == '-' && num.start[1] == '0'))
    {
        return -1;
    }

    pos->message_id_text = (const char *) num.start;
    pos->message_id_text_len = num.len;

    return 0;
}


/* another member: named once, as the strict check wants, any value */
static int
ngx_geostream_scan_other(ngx_geostream_scan_t *s, const unsigned char *key,
    size_t key_len)
{
    size_t  i;

    if (s->nothers == NGX_GEOSTREAM_SCAN_MEMBERS) {
        return -1;
    }

    for (i = 0; i < s->nothers; i++) {
        if (s->others[i].len == key_len
            && memcmp(s->others[i].data, key, key_len) == 0)
        {
            return -1;
        }
    }

    s->others[s->nothers].data = key;
    s->others[s->nothers].len = key_len;
    s->nothers++;

    return ngx_geostream_scan_value(s, 1);
}


static void
ngx_geostream_scan_space(ngx_geostream_scan_t *s)
{
    while (s->p < s->last
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }
}


/*
 * A JSON string: its bytes between the quotes, and whether it has escapes
 * (checked, not decoded).  Valid UTF-8, no raw control characters, no
 * \u0000, and no \u escape of a surrogate, which cJSON checks in pairs.
 */
static int
ngx_geostream_scan_string(ngx_geostream_scan_t *s,
    const unsigned char **start, size_t *len, int *escaped)
{
    int                   i;
    unsigned int          u;
    const unsigned char  *p;

    p = s->p;
    *escaped = 0;

    if (p == s->last || *p++ != '"') {
        return -1;
    }

    *start = p;

    while (p < s->last) {

        if (*p == '"') {
            *len = p - *start;
            s->p = p + 1;
            return 0;
        }

        if (*p < 0x20) {
            return -1;
        }

        if (*p >= 0x80) {
            i = (int) ngx_geostream_utf8_char(p, s->last - p);

            if (i == 0) {
                return -1;
            }

            p += i;
            continue;
        }

        if (*p != '\\') {
            p++;
            continue;
        }

        *escaped = 1;

        if (++p == s->last) {
            return -1;
        }

        switch (*p) {

        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            p++;
            break;

        case 'u':
            if (s->last - p < 5) {
                return -1;
            }

            u = 0;

            for (i = 1; i <= 4; i++) {
                u <<= 4;

                if (p[i] >= '0' && p[i] <= '9') {
                    u |= p[i] - '0';

                } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
                    u |= (p[i] | 0x20) - 'a' + 10;

                } else {
                    return -1;
                }
            }

            /* cJSON checks surrogates in pairs; no string holds a NUL */
            if ((u >= 0xd800 && u <= 0xdfff) || u == 0) {
                return -1;
            }

            p += 5;
            break;

        default:
            return -1;
        }
    }

    return -1;
}


/*
 * A JSON number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) and its
 * value (ngx_geostream_scan_double()).  One pass over its bytes, a part
 * of the grammar after the other.
 */
static int
ngx_geostream_scan_number(ngx_geostream_scan_t *s, ngx_geostream_number_t *num,
    double *value)
{
    int                   exp, exp_sign, digits, frac, exp_digits;
    uint64_t              mantissa;
    const unsigned char  *p;

    p = s->p;
    num->start = p;
    num->integer = 1;

    mantissa = 0;
    digits = 0;
    frac = 0;
    exp = 0;
    exp_sign = 1;

    if (p < s->last && *p == '-') {
        p++;
    }

    if (p == s->last || *p < '0' || *p > '9') {
        return -1;
    }

    if (*p == '0') {
        p++;

    } else {
        for ( /* void */ ; p < s->last && *p >= '0' && *p <= '9'; p++) {
            if (digits < 19) {
                mantissa = mantissa * 10 + (*p - '0');
            }

            digits++;
        }
    }

    if (p < s->last && *p == '.') {
        num->integer = 0;

        if (++p == s->last || *p < '0' || *p > '9') {
            return -1;
        }

        for ( /* void */ ; p < s->last && *p >= '0' && *p <= '9'; p++) {
            if (digits < 19 && (mantissa || *p != '0')) {
                mantissa = mantissa * 10 + (*p - '0');
                digits++;
                frac++;

            } else if (mantissa == 0) {
                frac++;          /* a leading zero of the fraction */

            } else {
                digits++;        /* beyond 19 digits: strtod() decides */
            }
        }
    }

    if (p < s->last && (*p == 'e' || *p == 'E')) {
        num->integer = 0;
        exp_digits = 0;

        if (++p < s->last && (*p == '+' || *p == '-')) {
            exp_sign = (*p++ == '-') ? -1 : 1;
        }

        for ( /* void */ ; p < s->last && *p >= '0' && *p <= '9'; p++) {
            if (exp < 10000) {
                exp = exp * 10 + (*p - '0');
            }

            exp_digits++;
        }

        if (exp_digits == 0) {
            return -1;
        }
    }

    num->len = p - num->start;
    s->p = p;

    if (num->len > NGX_GEOSTREAM_SCAN_NUMBER) {
        return -1;
    }

    return ngx_geostream_scan_double(num, mantissa, digits,
                                     exp_sign * exp - frac, value);
}


/*
 * The value of a number read: "digits" significant ones in "mantissa"
 * (the first 19), times 10^"exp".  Up to 15 digits and a power of ten up
 * to 22 the value is exact with one multiplication or division (both
 * operands are exact doubles, so the result is correctly rounded, as
 * strtod() rounds); other numbers go through strtod().
 */
static int
ngx_geostream_scan_double(const ngx_geostream_number_t *num,
    uint64_t mantissa, int digits, int exp, double *value)
{
    char  text[NGX_GEOSTREAM_SCAN_NUMBER + 1];

    if (digits <= 15 && exp >= -22 && exp <= 22) {
        *value = (exp >= 0) ? (double) mantissa * ngx_geostream_pow10[exp]
                            : (double) mantissa / ngx_geostream_pow10[-exp];

        if (num->start[0] == '-') {
            *value = -*value;
        }

        return 0;
    }

    /* nginx never calls setlocale(): the decimal point is '.' */
    memcpy(text, num->start, num->len);
    text[num->len] = '\0';
    *value = strtod(text, NULL);

    return isfinite(*value) ? 0 : -1;
}


/* any JSON value, checked and skipped */
static int
ngx_geostream_scan_value(ngx_geostream_scan_t *s, int depth)
{
    int                      escaped;
    size_t                   len;
    double                   d;
    const unsigned char     *start;
    ngx_geostream_number_t   num;

    if (s->p == s->last || depth > NGX_GEOSTREAM_SCAN_DEPTH) {
        return -1;
    }

    switch (*s->p) {

    case '"':
        return ngx_geostream_scan_string(s, &start, &len, &escaped);

    case 't':
        return ngx_geostream_scan_literal(s, "true");

    case 'f':
        return ngx_geostream_scan_literal(s, "false");

    case 'n':
        return ngx_geostream_scan_literal(s, "null");

    case '{':
        /* its members' names would need checking for twins: cJSON's */
        return -1;

    case '[':
        s->p++;
        ngx_geostream_scan_space(s);

        if (s->p < s->last && *s->p == ']') {
            s->p++;
            return 0;
        }

        for ( ;; ) {
            if (ngx_geostream_scan_value(s, depth + 1) != 0) {
                return -1;
            }

            ngx_geostream_scan_space(s);

            if (s->p == s->last) {
                return -1;
            }

            if (*s->p == ',') {
                s->p++;
                ngx_geostream_scan_space(s);
                continue;
            }

            return (*s->p++ == ']') ? 0 : -1;
        }

    default:
        /* a number; its value does not matter, but it must be finite */
        return ngx_geostream_scan_number(s, &num, &d);
    }
}


static int
ngx_geostream_scan_literal(ngx_geostream_scan_t *s, const char *literal)
{
    size_t  len;

    len = strlen(literal);

    if ((size_t) (s->last - s->p) < len || memcmp(s->p, literal, len) != 0) {
        return -1;
    }

    s->p += len;

    return 0;
}
