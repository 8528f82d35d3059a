/*
 * libFuzzer target: a produce request's body (single, array, NDJSON), as
 * ngx_geostream_records_parse() reads it.  Whatever it accepts is a valid
 * position whose stored bytes pass the strict check and read back to the
 * same name, lat and lon; its answer and event are valid JSON within their
 * sizes; a refusal always says why.
 */

#include "fuzz.h"


static void
fuzz_record(const ngx_geostream_record_t *rec)
{
    char                      *json;
    cJSON                     *back;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    fuzz_assert(rec->pos.name_len > 0
                && rec->pos.name_len <= NGX_GEOSTREAM_NAME_MAX
                && rec->pos.lat >= -90 && rec->pos.lat <= 90
                && rec->pos.lon >= -180 && rec->pos.lon <= 180);

    fuzz_assert(ngx_geostream_utf8_valid((const unsigned char *)
                                         rec->pos.name, rec->pos.name_len)
                && !ngx_geostream_utf8_has_control((const unsigned char *)
                                                   rec->pos.name,
                                                   rec->pos.name_len));

    /* what Kafka stores is strict JSON that reads back the same */
    fuzz_assert(ngx_geostream_json_check(rec->value, rec->value_len, &err)
                == 0);

    fuzz_assert(ngx_geostream_position_parse(&pos, rec->value,
                                             rec->value_len, &err) == 0);
    fuzz_assert(pos.lat == rec->pos.lat && pos.lon == rec->pos.lon
                && pos.name_len == rec->pos.name_len
                && memcmp(pos.name, rec->pos.name, pos.name_len) == 0);
    ngx_geostream_position_free(&pos);

    if (rec->pos.root == NULL) {
        /* the fast reader took it: cJSON must read the same */
        fuzz_same_as_cjson(&rec->pos, rec->value, rec->value_len);
        return;
    }

    json = ngx_geostream_position_event(&rec->pos, "t");
    fuzz_assert(json != NULL);
    fuzz_assert(ngx_geostream_json_check((const unsigned char *) json,
                                         strlen(json), &err) == 0);
    free(json);

    json = fuzz_reply(&rec->pos);
    back = cJSON_Parse(json);
    fuzz_assert(back != NULL);
    cJSON_Delete(back);
    free(json);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      batch, ndjson;
    size_t                   n, i;
    ngx_geostream_error_t    err;
    ngx_geostream_record_t  *records;

    for (ndjson = 0; ndjson < 2; ndjson++) {
        if (ngx_geostream_records_parse(&records, &n, &batch, data, size,
                                        ndjson, &err)
            != 0)
        {
            fuzz_assert(err.code != NULL && err.detail[0] != '\0');
            continue;
        }

        fuzz_assert(n > 0 && (n == 1 || batch));

        for (i = 0; i < n; i++) {
            fuzz_record(&records[i]);
        }

        ngx_geostream_records_free(records, n);
    }

    return 0;
}
