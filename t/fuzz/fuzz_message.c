/*
 * libFuzzer target for the plain C parsers that see untrusted bytes: the
 * produce request body (single, array, NDJSON), SSE framing, cursors,
 * filters.  Memory errors show under AddressSanitizer; the invariants
 * below abort.
 *
 *   make fuzz          (builds with clang, runs each for a while)
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_history.h"
#include "ngx_geostream_message.h"


/* a reply, NUL-terminated (malloc()ed) */
static char *
reply_of(const ngx_geostream_position_t *pos)
{
    char    *json, *end;
    size_t   size;

    size = ngx_geostream_reply_size(pos, "t", "kafka_error");
    json = malloc(size + 1);
    if (json == NULL) {
        abort();
    }

    end = ngx_geostream_reply_write(json, pos, "t", 1, INT64_MIN,
                                    "kafka_error");
    if ((size_t) (end - json) > size) {
        abort();                        /* wrote past its announced size */
    }

    *end = '\0';

    return json;
}


/*
 * A record that ngx_geostream_position_scan() read is read the same by
 * ngx_geostream_position_parse(): same coordinates, time, name and
 * answer, byte for byte.
 */
static void
same_as_cjson(const ngx_geostream_record_t *rec)
{
    char                      *fast, *slow;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    if (ngx_geostream_position_parse(&pos, rec->value, rec->value_len, &err)
        != 0)
    {
        abort();                        /* the fast path took a bad one */
    }

    if (pos.lat != rec->pos.lat || pos.lon != rec->pos.lon
        || signbit(pos.lat) != signbit(rec->pos.lat)
        || signbit(pos.lon) != signbit(rec->pos.lon)
        || pos.ts != rec->pos.ts || pos.name_len != rec->pos.name_len
        || memcmp(pos.name, rec->pos.name, pos.name_len) != 0)
    {
        abort();
    }

    fast = reply_of(&rec->pos);
    slow = reply_of(&pos);

    if (strcmp(fast, slow) != 0) {
        abort();
    }

    free(fast);
    free(slow);
    ngx_geostream_position_free(&pos);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      batch, ndjson;
    char                    *json, *end_reply;
    cJSON                   *reply;
    size_t                   n, i, frame_size, reply_size;
    int64_t                  offsets[64];
    unsigned char           *frame, *end;
    ngx_geostream_error_t    err;
    ngx_geostream_name_t     names[8];
    ngx_geostream_filter_t   filter;
    ngx_geostream_record_t  *records;

    for (ndjson = 0; ndjson < 2; ndjson++) {
        if (ngx_geostream_records_parse(&records, &n, &batch, data, size,
                                        ndjson, &err)
            != 0)
        {
            if (err.code == NULL || strlen(err.detail) == 0) {
                abort();                /* a refusal always says why */
            }

            continue;
        }

        for (i = 0; i < n; i++) {
            if (records[i].pos.name_len == 0
                || records[i].pos.lat < -90 || records[i].pos.lat > 90
                || records[i].pos.lon < -180 || records[i].pos.lon > 180)
            {
                abort();                /* validation let through a bad one */
            }

            if (records[i].pos.root == NULL) {
                /* the fast reader took it: cJSON must read the same */
                same_as_cjson(&records[i]);
                continue;
            }

            json = ngx_geostream_position_event(&records[i].pos, "t");
            free(json);

            /* the answer fits its announced size and is valid JSON */
            reply_size = ngx_geostream_reply_size(&records[i].pos, "t",
                                                  "kafka_error");
            json = malloc(reply_size + 1);
            if (json == NULL) {
                continue;
            }

            end_reply = ngx_geostream_reply_write(json, &records[i].pos,
                                                  "t", 1, INT64_MIN,
                                                  "kafka_error");
            if ((size_t) (end_reply - json) > reply_size) {
                abort();
            }

            *end_reply = '\0';

            reply = cJSON_Parse(json);
            if (reply == NULL) {
                abort();
            }

            cJSON_Delete(reply);
            free(json);
        }

        ngx_geostream_records_free(records, n);
    }

    /* whatever the payload, its frame has exactly the size announced */
    frame_size = ngx_geostream_sse_event_size((const unsigned char *) "0:1",
                                              3, data, size);
    frame = malloc(frame_size);
    if (frame) {
        end = ngx_geostream_sse_event_write(frame,
                                            (const unsigned char *) "0:1", 3,
                                            data, size);
        if ((size_t) (end - frame) != frame_size
            || frame[frame_size - 1] != '\n'
            || frame[frame_size - 2] != '\n')
        {
            abort();
        }

        free(frame);
    }

    (void) ngx_geostream_cursor_parse(data, size, offsets, 64);

    memset(&filter, 0, sizeof(filter));
    (void) ngx_geostream_filter_bbox(&filter, data, size);
    (void) ngx_geostream_filter_names(&filter, data, size, names, 8);
    (void) ngx_geostream_filter_match(&filter, data, size, 0, 0);

    return 0;
}
