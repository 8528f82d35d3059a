/*
 * What geostream's libFuzzer targets share (t/fuzz/fuzz_*.c, one per
 * parser that sees untrusted bytes): a way to fail that says which
 * invariant broke, and the check that the fast reader and the cJSON path
 * read a body the same.  Memory errors show under AddressSanitizer, other
 * undefined behaviour under UBSan; a broken invariant aborts.
 *
 *   make fuzz-build; t/fuzz/run SECONDS TARGET...   (or make fuzz)
 */

#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__,     \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)


/* a reply, NUL-terminated (malloc()ed), within its announced size */
static char *
fuzz_reply(const ngx_geostream_position_t *pos)
{
    char    *json, *end;
    size_t   size;

    size = ngx_geostream_reply_size(pos, "t", "kafka_error");
    json = malloc(size + 1);
    fuzz_assert(json != NULL);

    end = ngx_geostream_reply_write(json, pos, "t", 1, INT64_MIN,
                                    "kafka_error");
    fuzz_assert((size_t) (end - json) <= size);

    *end = '\0';

    return json;
}


/*
 * A body that ngx_geostream_position_scan() read ("fast") is read the
 * same by ngx_geostream_position_parse(): same coordinates, time, name
 * and answer, byte for byte.
 */
static void
fuzz_same_as_cjson(const ngx_geostream_position_t *fast,
    const unsigned char *data, size_t len)
{
    char                      *a, *b;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    fuzz_assert(ngx_geostream_position_parse(&pos, data, len, &err) == 0);

    fuzz_assert(pos.lat == fast->lat && pos.lon == fast->lon
                && signbit(pos.lat) == signbit(fast->lat)
                && signbit(pos.lon) == signbit(fast->lon)
                && pos.ts == fast->ts && pos.name_len == fast->name_len
                && memcmp(pos.name, fast->name, pos.name_len) == 0);

    a = fuzz_reply(fast);
    b = fuzz_reply(&pos);
    fuzz_assert(strcmp(a, b) == 0);

    free(a);
    free(b);
    ngx_geostream_position_free(&pos);
}


#endif /* _FUZZ_H_INCLUDED_ */
