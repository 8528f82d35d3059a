/*
 * Position messages: validation, answers, SSE framing.  Plain C: see the
 * header for why.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"


static const char *ngx_geostream_json_end(const char *p, const char *last);
static int ngx_geostream_position_check(ngx_geostream_position_t *pos,
    ngx_geostream_error_t *err);
static int ngx_geostream_feature_check(ngx_geostream_position_t *pos,
    const cJSON *feature, ngx_geostream_error_t *err);
static int ngx_geostream_entity_check(ngx_geostream_position_t *pos,
    const cJSON *obj, ngx_geostream_error_t *err);
static double ngx_geostream_number(const cJSON *item);
static int ngx_geostream_range(double v, const char *what, double min,
    double max, ngx_geostream_error_t *err);
static int ngx_geostream_record_fail(ngx_geostream_error_t *err, size_t i);
static int ngx_geostream_ndjson_line(const unsigned char **p,
    const unsigned char *last, const unsigned char **line, size_t *len);
static int ngx_geostream_ndjson_parse(ngx_geostream_record_t **records,
    size_t *n, const unsigned char *data, size_t len,
    ngx_geostream_error_t *err);
static int ngx_geostream_array_parse(ngx_geostream_record_t **records,
    size_t *n, int *batch, const unsigned char *data, size_t len,
    ngx_geostream_error_t *err);
static int ngx_geostream_is_member(const char *key, const char **keys);


/* skips the whitespace JSON allows after a value */
static const char *
ngx_geostream_json_end(const char *p, const char *last)
{
    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    return p;
}


int
ngx_geostream_position_parse(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len, ngx_geostream_error_t *err)
{
    const char  *end;

    memset(pos, 0, sizeof(ngx_geostream_position_t));
    pos->ts = -1;

    if (len == 0) {
        return ngx_geostream_fail(err, "invalid_json", "the body is empty");
    }

    /* cJSON would skip it; the strict check words it (below) */
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
        return ngx_geostream_json_check(data, len, err);
    }

    end = NULL;
    pos->root = cJSON_ParseWithLengthOpts((const char *) data, len, &end, 0);

    if (pos->root == NULL) {
        return ngx_geostream_fail(err, "invalid_json",
                                  "malformed JSON at byte %zu",
                                  end ? (size_t) (end - (const char *) data)
                                      : (size_t) 0);
    }

    /* one JSON value and nothing after it but whitespace */
    end = ngx_geostream_json_end(end, (const char *) data + len);

    if (end != (const char *) data + len) {
        ngx_geostream_fail(err, "invalid_json",
                           "unexpected data after the JSON value at byte %zu",
                           (size_t) (end - (const char *) data));
        goto failed;
    }

    /* what cJSON let through that Kafka must not store */
    if (ngx_geostream_json_check(data, len, err) != 0) {
        goto failed;
    }

    if (ngx_geostream_position_check(pos, err) != 0) {
        goto failed;
    }

    return 0;

failed:

    cJSON_Delete(pos->root);
    pos->root = NULL;

    return -1;
}


/* validates pos->root and fills the rest of "pos" from it */
static int
ngx_geostream_position_check(ngx_geostream_position_t *pos,
    ngx_geostream_error_t *err)
{
    const cJSON  *root, *item;

    root = pos->root;
    pos->ts = -1;

    if (!cJSON_IsObject(root)) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "the message must be a JSON object");
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "type");

    if (cJSON_IsString(item) && strcmp(item->valuestring, "Feature") == 0) {
        return ngx_geostream_feature_check(pos, root, err);
    }

    pos->members = root;

    pos->lat = ngx_geostream_number(cJSON_GetObjectItemCaseSensitive(root,
                                                                     "lat"));
    pos->lon = ngx_geostream_number(cJSON_GetObjectItemCaseSensitive(root,
                                                                     "lon"));

    if (ngx_geostream_lat_check(pos->lat, "\"lat\"", err) != 0
        || ngx_geostream_lon_check(pos->lon, "\"lon\"", err) != 0)
    {
        return -1;
    }

    return ngx_geostream_entity_check(pos, root, err);
}


/*
 * The entity's members: "name", "message_id", "ts", in a plain message or
 * in a Feature's "properties".
 */
static int
ngx_geostream_entity_check(ngx_geostream_position_t *pos, const cJSON *obj,
    ngx_geostream_error_t *err)
{
    double        ts;
    const cJSON  *name, *id, *item;

    ts = 0;
    name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    id = cJSON_GetObjectItemCaseSensitive(obj, "message_id");
    item = cJSON_GetObjectItemCaseSensitive(obj, "ts");

    /* not a string breaks the rules as an empty one does */
    pos->name = cJSON_IsString(name) ? name->valuestring : "";
    pos->name_len = strlen(pos->name);

    if (ngx_geostream_name_check(pos->name, pos->name_len, err) != 0) {
        return -1;
    }

    if (id != NULL) {
        if (!cJSON_IsString(id) && !cJSON_IsNumber(id)) {
            return ngx_geostream_fail(err, "invalid_message",
                               "\"message_id\" must be a string or a number");
        }

        pos->message_id = id;
    }

    if (item != NULL) {
        ts = ngx_geostream_number(item);

        if (ngx_geostream_ts_check(ts, err) != 0) {
            return -1;
        }

        pos->ts = (int64_t) ts;
    }

    return 0;
}


/*
 * A GeoJSON Feature: a Point geometry ([lon, lat], GeoJSON's order) and
 * the entity in "properties", which then play the part of the message's
 * members.
 */
static int
ngx_geostream_feature_check(ngx_geostream_position_t *pos,
    const cJSON *feature, ngx_geostream_error_t *err)
{
    const cJSON  *geometry, *type, *coordinates, *properties;

    geometry = cJSON_GetObjectItemCaseSensitive(feature, "geometry");
    type = cJSON_GetObjectItemCaseSensitive(geometry, "type");
    coordinates = cJSON_GetObjectItemCaseSensitive(geometry, "coordinates");

    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Point") != 0
        || !cJSON_IsArray(coordinates)
        || cJSON_GetArraySize(coordinates) < 2)
    {
        return ngx_geostream_fail(err, "invalid_message",
                                  "a Feature needs a Point geometry with "
                                  "[lon, lat] coordinates");
    }

    pos->lat = ngx_geostream_number(cJSON_GetArrayItem(coordinates, 1));
    pos->lon = ngx_geostream_number(cJSON_GetArrayItem(coordinates, 0));

    if (ngx_geostream_lat_check(pos->lat, "the latitude (coordinates[1])",
                                err)
        != 0
        || ngx_geostream_lon_check(pos->lon,
                                   "the longitude (coordinates[0])", err)
           != 0)
    {
        return -1;
    }

    properties = cJSON_GetObjectItemCaseSensitive(feature, "properties");

    if (!cJSON_IsObject(properties)) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "a Feature needs \"properties\" with "
                                  "a \"name\"");
    }

    pos->members = properties;

    return ngx_geostream_entity_check(pos, properties, err);
}


/* a member's number; anything else is NaN, which breaks every rule */
static double
ngx_geostream_number(const cJSON *item)
{
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}


/*
 * The rules of a position's values, for both readers (the fast one in
 * ngx_geostream_scan.c too).
 */
static int
ngx_geostream_range(double v, const char *what, double min, double max,
    ngx_geostream_error_t *err)
{
    /* NaN and the infinities are out of every range */
    if (!(v >= min && v <= max)) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "%s must be a number from %g to %g",
                                  what, min, max);
    }

    return 0;
}


int
ngx_geostream_lat_check(double lat, const char *what,
    ngx_geostream_error_t *err)
{
    return ngx_geostream_range(lat, what, -90, 90, err);
}


int
ngx_geostream_lon_check(double lon, const char *what,
    ngx_geostream_error_t *err)
{
    return ngx_geostream_range(lon, what, -180, 180, err);
}


int
ngx_geostream_ts_check(double ts, ngx_geostream_error_t *err)
{
    if (ngx_geostream_range(ts, "\"ts\"", 0, NGX_GEOSTREAM_TS_MAX, err) != 0)
    {
        return -1;
    }

    if (ts != floor(ts)) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "\"ts\" must be whole milliseconds");
    }

    return 0;
}


int
ngx_geostream_name_check(const char *name, size_t len,
    ngx_geostream_error_t *err)
{
    if (len == 0) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "\"name\" must be a non-empty string");
    }

    if (len > NGX_GEOSTREAM_NAME_MAX) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "\"name\" must be at most %d bytes",
                                  NGX_GEOSTREAM_NAME_MAX);
    }

    /* a Kafka key, a log line, a filter: no control character in it */
    if (ngx_geostream_utf8_has_control((const unsigned char *) name, len)) {
        return ngx_geostream_fail(err, "invalid_message",
                                  "\"name\" must not hold control "
                                  "characters");
    }

    return 0;
}


void
ngx_geostream_position_free(ngx_geostream_position_t *pos)
{
    cJSON_Delete(pos->root);
    pos->root = NULL;
}


/* prefixes an error's detail with the index of the record it is about */
static int
ngx_geostream_record_fail(ngx_geostream_error_t *err, size_t i)
{
    int   n;
    char  prefix[32];

    /* details are short; a long one loses its end, never the index */
    n = snprintf(prefix, sizeof(prefix), "record %zu: ", i);

    memmove(err->detail + n, err->detail, sizeof(err->detail) - n);
    memcpy(err->detail, prefix, n);
    err->detail[sizeof(err->detail) - 1] = '\0';

    return -1;
}


/*
 * The next line of an NDJSON body that is not blank, without its CR or
 * LF; 0 when there is none left.  "*p" moves past it.
 */
static int
ngx_geostream_ndjson_line(const unsigned char **p, const unsigned char *last,
    const unsigned char **line, size_t *len)
{
    const unsigned char  *end;

    while (*p < last) {
        *line = *p;
        end = memchr(*p, '\n', last - *p);
        *len = (end ? end : last) - *p;
        *p = end ? end + 1 : last;

        if (ngx_geostream_json_end((const char *) *line,
                                   (const char *) *line + *len)
            != (const char *) *line + *len)
        {
            if ((*line)[*len - 1] == '\r') {
                (*len)--;
            }

            return 1;
        }
    }

    return 0;
}


int
ngx_geostream_records_parse(ngx_geostream_record_t **records, size_t *n,
    int *batch, const unsigned char *data, size_t len, int ndjson,
    ngx_geostream_error_t *err)
{
    const char              *end;
    ngx_geostream_record_t  *recs;

    *records = NULL;
    *n = 0;
    *batch = ndjson;

    if (ndjson) {
        return ngx_geostream_ndjson_parse(records, n, data, len, err);
    }

    recs = calloc(1, sizeof(ngx_geostream_record_t));
    if (recs == NULL) {
        return ngx_geostream_fail(err, "internal_error", "out of memory");
    }

    /* the common body first, in one pass; anything else through cJSON */
    if (ngx_geostream_position_scan(&recs[0].pos, data, len) == 0
        || ngx_geostream_position_parse(&recs[0].pos, data, len, err) == 0)
    {
        recs[0].value = data;
        recs[0].value_len = len;
        *records = recs;
        *n = 1;
        return 0;
    }

    /* not a single position: a JSON array of them is a batch */
    free(recs);

    /*
     * Bad JSON is bad as an array too; for a good array, "err" says it is
     * not an object, and the body has passed the strict check already.
     */
    if (strcmp(err->code, "invalid_json") == 0) {
        return -1;
    }

    end = ngx_geostream_json_end((const char *) data,
                                 (const char *) data + len);

    if (end == (const char *) data + len || *end != '[') {
        return -1;
    }

    return ngx_geostream_array_parse(records, n, batch, data, len, err);
}


/* an NDJSON body: first count the records, then parse each line in place */
static int
ngx_geostream_ndjson_parse(ngx_geostream_record_t **records, size_t *n,
    const unsigned char *data, size_t len, ngx_geostream_error_t *err)
{
    size_t                   i, count, line_len;
    const unsigned char     *p, *line, *last;
    ngx_geostream_record_t  *recs;

    last = data + len;
    count = 0;

    for (p = data; ngx_geostream_ndjson_line(&p, last, &line, &line_len);
         count++)
    {
        /* void */
    }

    if (count == 0) {
        return ngx_geostream_fail(err, "invalid_json",
                                  "the batch has no records");
    }

    recs = calloc(count, sizeof(ngx_geostream_record_t));
    if (recs == NULL) {
        return ngx_geostream_fail(err, "internal_error", "out of memory");
    }

    for (i = 0, p = data;
         ngx_geostream_ndjson_line(&p, last, &line, &line_len);
         i++)
    {
        if (ngx_geostream_position_scan(&recs[i].pos, line, line_len) != 0
            && ngx_geostream_position_parse(&recs[i].pos, line, line_len,
                                            err)
               != 0)
        {
            ngx_geostream_records_free(recs, i);
            return ngx_geostream_record_fail(err, i);
        }

        recs[i].value = line;
        recs[i].value_len = line_len;
    }

    *records = recs;
    *n = count;

    return 0;
}


/*
 * A body that starts as a JSON array and passed the strict check: a
 * batch, each element a record.  "err" already says what is wrong with
 * it as a single value, if it is not an array after all.
 */
static int
ngx_geostream_array_parse(ngx_geostream_record_t **records, size_t *n,
    int *batch, const unsigned char *data, size_t len,
    ngx_geostream_error_t *err)
{
    size_t                   i, count;
    cJSON                   *array;
    const char              *end;
    const unsigned char     *p, *line, *last;
    ngx_geostream_record_t  *recs;

    last = data + len;

    array = cJSON_ParseWithLengthOpts((const char *) data, len, &end, 0);

    if (array == NULL || !cJSON_IsArray(array)
        || ngx_geostream_json_end(end, (const char *) last)
           != (const char *) last)
    {
        cJSON_Delete(array);
        return -1;
    }

    *batch = 1;
    count = (size_t) cJSON_GetArraySize(array);

    if (count == 0) {
        cJSON_Delete(array);
        return ngx_geostream_fail(err, "invalid_json",
                                  "the batch has no records");
    }

    recs = calloc(count, sizeof(ngx_geostream_record_t));
    if (recs == NULL) {
        cJSON_Delete(array);
        return ngx_geostream_fail(err, "internal_error", "out of memory");
    }

    /*
     * Each element is stored as its own bytes in the body, as a single
     * position is: cJSON would print its numbers to 15 digits whenever
     * they read back within an epsilon, so a stored lat could differ from
     * the one validated in its last digits.
     */
    p = (const unsigned char *) ngx_geostream_json_end((const char *) data,
                                                       (const char *) last);
    p++;                                                    /* '[' */

    for (i = 0; i < count; i++) {
        recs[i].pos.root = cJSON_DetachItemFromArray(array, 0);

        if (ngx_geostream_position_check(&recs[i].pos, err) != 0) {
            ngx_geostream_records_free(recs, i + 1);
            cJSON_Delete(array);
            return ngx_geostream_record_fail(err, i);
        }

        p = (const unsigned char *) ngx_geostream_json_end((const char *) p,
                                                       (const char *) last);
        line = p;
        p = ngx_geostream_json_skip(p, last);

        recs[i].value = line;
        recs[i].value_len = p - line;

        p = (const unsigned char *) ngx_geostream_json_end((const char *) p,
                                                       (const char *) last);
        p++;                                                /* ',' or ']' */
    }

    cJSON_Delete(array);

    *records = recs;
    *n = count;

    return 0;
}


void
ngx_geostream_records_free(ngx_geostream_record_t *records, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        ngx_geostream_position_free(&records[i].pos);
    }

    free(records);
}


/*
 * The answer is written straight into its buffer by the JSON writer, in
 * two passes (size, then bytes): it is on every produce request's path,
 * where a cJSON tree built, printed and freed for it cost more than the
 * rest of the answer.
 */
void
ngx_geostream_reply_json(ngx_geostream_json_writer_t *w,
    const ngx_geostream_position_t *pos, const char *topic,
    int32_t partition, int64_t offset, const char *error)
{
    const cJSON  *id;

    id = pos->message_id;

    ngx_geostream_jw_object(w);

    ngx_geostream_jw_key(w, "name");
    ngx_geostream_jw_string(w, pos->name, pos->name_len);

    ngx_geostream_jw_key(w, "message_id");

    if (pos->message_id_text) {
        ngx_geostream_jw_raw(w, (const unsigned char *) pos->message_id_text,
                             pos->message_id_text_len);

    } else if (id == NULL) {
        ngx_geostream_jw_null(w);

    } else if (cJSON_IsString(id)) {
        ngx_geostream_jw_string(w, id->valuestring, strlen(id->valuestring));

    } else {
        ngx_geostream_jw_double(w, id->valuedouble);
    }

    ngx_geostream_jw_key(w, "topic");
    ngx_geostream_jw_string(w, topic, strlen(topic));

    if (partition >= 0) {
        ngx_geostream_jw_key(w, "partition");
        ngx_geostream_jw_int(w, partition);
        ngx_geostream_jw_key(w, "offset");
        ngx_geostream_jw_int(w, offset);
    }

    if (error != NULL) {
        ngx_geostream_jw_key(w, "error");
        ngx_geostream_jw_string(w, error, strlen(error));
    }

    ngx_geostream_jw_object_end(w);
}


/*
 * The answer without partition and offset, measured, and room for the
 * longest partition and offset there are (the two members are measured
 * here, not written, so that the bound costs less than the answer).
 */
size_t
ngx_geostream_reply_size(const ngx_geostream_position_t *pos,
    const char *topic, const char *error)
{
    ngx_geostream_json_writer_t  w;

    ngx_geostream_jw_init(&w, NULL, 0);
    ngx_geostream_reply_json(&w, pos, topic, -1, 0, error);

    return w.size + sizeof(",\"partition\":2147483647"
                           ",\"offset\":-9223372036854775808") - 1;
}


char *
ngx_geostream_reply_write(char *dst, const ngx_geostream_position_t *pos,
    const char *topic, int32_t partition, int64_t offset, const char *error)
{
    ngx_geostream_json_writer_t  w;

    /* the caller has room for ngx_geostream_reply_size() bytes */
    ngx_geostream_jw_init_measured(&w, (unsigned char *) dst);
    ngx_geostream_reply_json(&w, pos, topic, partition, offset, error);

    return (char *) w.pos;
}


static int
ngx_geostream_is_member(const char *key, const char **keys)
{
    for ( /* void */ ; *keys; keys++) {
        if (strcmp(key, *keys) == 0) {
            return 1;
        }
    }

    return 0;
}


char *
ngx_geostream_position_event(const ngx_geostream_position_t *pos,
    const char *topic)
{
    char          *json;
    cJSON         *event;
    const cJSON   *item;

    static const char  *own[] = {
        "topic", "name", "message_id", "lat", "lon", NULL
    };

    /* a position without its tree (the fast reader's) has no members */
    if (pos->root == NULL) {
        return NULL;
    }

    event = cJSON_CreateObject();
    if (event == NULL) {
        return NULL;
    }

    json = NULL;

    if (cJSON_AddStringToObject(event, "topic", topic) == NULL
        || cJSON_AddStringToObject(event, "name", pos->name) == NULL
        || (pos->message_id != NULL
            && !cJSON_AddItemReferenceToObject(event, "message_id",
                                               (cJSON *) pos->message_id))
        || cJSON_AddNumberToObject(event, "lat", pos->lat) == NULL
        || cJSON_AddNumberToObject(event, "lon", pos->lon) == NULL)
    {
        goto done;
    }

    /* the message's other members follow, shared, not copied */
    cJSON_ArrayForEach(item, pos->members) {
        if (item->string == NULL || ngx_geostream_is_member(item->string, own))
        {
            continue;
        }

        if (!cJSON_AddItemReferenceToObject(event, item->string,
                                            (cJSON *) item))
        {
            goto done;
        }
    }

    json = cJSON_PrintUnformatted(event);

done:

    /* references are not freed with the event */
    cJSON_Delete(event);

    return json;
}


void
ngx_geostream_error_write(ngx_geostream_json_writer_t *w,
    const ngx_geostream_error_t *err)
{
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "error");
    ngx_geostream_jw_string(w, err->code, strlen(err->code));
    ngx_geostream_jw_key(w, "detail");
    ngx_geostream_jw_string(w, err->detail, strlen(err->detail));
    ngx_geostream_jw_object_end(w);
}


char *
ngx_geostream_error_json(const ngx_geostream_error_t *err)
{
    char                         *json;
    ngx_geostream_json_writer_t   w;

    if (err->code == NULL) {
        return NULL;
    }

    ngx_geostream_jw_init(&w, NULL, 0);
    ngx_geostream_error_write(&w, err);

    json = malloc(w.size + 1);
    if (json == NULL) {
        return NULL;
    }

    ngx_geostream_jw_init(&w, (unsigned char *) json, w.size);
    ngx_geostream_error_write(&w, err);

    if (ngx_geostream_jw_done(&w) != 0) {
        free(json);
        return NULL;
    }

    *w.pos = '\0';

    return json;
}


int
ngx_geostream_topic_valid(const unsigned char *name, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > NGX_GEOSTREAM_TOPIC_MAX) {
        return 0;
    }

    if ((len == 1 && name[0] == '.')
        || (len == 2 && name[0] == '.' && name[1] == '.'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * Finds the end of the line that starts at "p": the next CR or LF, or
 * "last".  "next" is set to the start of the following line (after a CR,
 * LF or CRLF), or NULL when this was the last line: a trailing line break
 * does not start another, empty line.
 */
static const unsigned char *
ngx_geostream_sse_line(const unsigned char *p, const unsigned char *last,
    const unsigned char **next)
{
    const unsigned char  *end;

    for (end = p; end < last && *end != '\r' && *end != '\n'; end++) {
        /* void */
    }

    *next = NULL;

    if (end < last) {
        p = end + 1;

        if (*end == '\r' && p < last && *p == '\n') {
            p++;
        }

        if (p < last) {
            *next = p;
        }
    }

    return end;
}


size_t
ngx_geostream_sse_event_size(const unsigned char *id, size_t id_len,
    const unsigned char *data, size_t data_len)
{
    size_t                size;
    const unsigned char  *p, *next, *end, *last;

    size = 1;                                  /* the blank line */

    if (id != NULL) {
        size += sizeof("id: \n") - 1 + id_len;
    }

    last = data + data_len;

    for (p = data; p != NULL; p = next) {
        end = ngx_geostream_sse_line(p, last, &next);
        size += sizeof("data: \n") - 1 + (size_t) (end - p);
    }

    return size;
}


unsigned char *
ngx_geostream_sse_event_write(unsigned char *dst, const unsigned char *id,
    size_t id_len, const unsigned char *data, size_t data_len)
{
    const unsigned char  *p, *next, *end, *last;

    if (id != NULL) {
        memcpy(dst, "id: ", 4);
        memcpy(dst + 4, id, id_len);
        dst += 4 + id_len;
        *dst++ = '\n';
    }

    last = data + data_len;

    for (p = data; p != NULL; p = next) {
        end = ngx_geostream_sse_line(p, last, &next);

        memcpy(dst, "data: ", 6);
        memcpy(dst + 6, p, end - p);
        dst += 6 + (end - p);
        *dst++ = '\n';
    }

    *dst++ = '\n';

    return dst;
}
