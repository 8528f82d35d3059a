/*
 * libFuzzer target for the plain C parsers that see untrusted bytes: the
 * produce request body (single, array, NDJSON), SSE framing, cursors,
 * filters.  Memory errors show under AddressSanitizer; the invariants
 * below abort.
 *
 *   make fuzz          (builds with clang, runs each for a while)
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_history.h"
#include "ngx_geostream_message.h"


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
