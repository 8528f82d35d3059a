/*
 * Position messages: validation, answers, SSE framing.  Plain C: see the
 * header for why.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"


#define NGX_GEOSTREAM_TS_MAX  9007199254740992.0   /* 2^53: exact in JSON */


static int ngx_geostream_fail(ngx_geostream_error_t *err, const char *code,
    const char *fmt, ...);
static const cJSON *ngx_geostream_number(const cJSON *obj, const char *key,
    double min, double max, double *value, ngx_geostream_error_t *err);


static int
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
ngx_geostream_position_parse(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len, ngx_geostream_error_t *err)
{
    double        ts;
    const char   *end, *last;
    const cJSON  *name, *id, *item;

    memset(pos, 0, sizeof(ngx_geostream_position_t));
    pos->ts = -1;

    if (len == 0) {
        return ngx_geostream_fail(err, "invalid_json", "the body is empty");
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
    last = (const char *) data + len;

    while (end < last
           && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    {
        end++;
    }

    if (end != last) {
        ngx_geostream_fail(err, "invalid_json",
                           "unexpected data after the JSON value at byte %zu",
                           (size_t) (end - (const char *) data));
        goto failed;
    }

    if (!cJSON_IsObject(pos->root)) {
        ngx_geostream_fail(err, "invalid_message",
                           "the message must be a JSON object");
        goto failed;
    }

    name = cJSON_GetObjectItemCaseSensitive(pos->root, "name");

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
        ngx_geostream_fail(err, "invalid_message",
                           "\"name\" must be a non-empty string");
        goto failed;
    }

    pos->name = name->valuestring;
    pos->name_len = strlen(name->valuestring);

    if (pos->name_len > NGX_GEOSTREAM_NAME_MAX) {
        ngx_geostream_fail(err, "invalid_message",
                           "\"name\" must be at most %d bytes",
                           NGX_GEOSTREAM_NAME_MAX);
        goto failed;
    }

    if (ngx_geostream_number(pos->root, "lat", -90, 90, &pos->lat, err)
        == NULL
        || ngx_geostream_number(pos->root, "lon", -180, 180, &pos->lon, err)
           == NULL)
    {
        goto failed;
    }

    id = cJSON_GetObjectItemCaseSensitive(pos->root, "message_id");

    if (id != NULL) {
        if (!cJSON_IsString(id) && !cJSON_IsNumber(id)) {
            ngx_geostream_fail(err, "invalid_message",
                               "\"message_id\" must be a string or a number");
            goto failed;
        }

        pos->message_id = id;
    }

    item = cJSON_GetObjectItemCaseSensitive(pos->root, "ts");

    if (item != NULL) {
        if (ngx_geostream_number(pos->root, "ts", 0, NGX_GEOSTREAM_TS_MAX,
                                 &ts, err)
            == NULL)
        {
            goto failed;
        }

        if (ts != floor(ts)) {
            ngx_geostream_fail(err, "invalid_message",
                               "\"ts\" must be whole milliseconds");
            goto failed;
        }

        pos->ts = (int64_t) ts;
    }

    return 0;

failed:

    cJSON_Delete(pos->root);
    pos->root = NULL;

    return -1;
}


static const cJSON *
ngx_geostream_number(const cJSON *obj, const char *key, double min,
    double max, double *value, ngx_geostream_error_t *err)
{
    const cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(item)
        || !isfinite(item->valuedouble)
        || item->valuedouble < min
        || item->valuedouble > max)
    {
        ngx_geostream_fail(err, "invalid_message",
                           "\"%s\" must be a number from %g to %g",
                           key, min, max);
        return NULL;
    }

    *value = item->valuedouble;

    return item;
}


void
ngx_geostream_position_free(ngx_geostream_position_t *pos)
{
    cJSON_Delete(pos->root);
    pos->root = NULL;
}


char *
ngx_geostream_position_reply(const ngx_geostream_position_t *pos,
    const unsigned char *topic, size_t topic_len)
{
    char   *json, *topic_str;
    cJSON  *reply, *id;

    topic_str = malloc(topic_len + 1);
    if (topic_str == NULL) {
        return NULL;
    }

    memcpy(topic_str, topic, topic_len);
    topic_str[topic_len] = '\0';

    json = NULL;

    reply = cJSON_CreateObject();
    if (reply == NULL) {
        goto done;
    }

    id = pos->message_id ? cJSON_Duplicate(pos->message_id, 0)
                         : cJSON_CreateNull();

    if (cJSON_AddStringToObject(reply, "name", pos->name) == NULL
        || id == NULL
        || !cJSON_AddItemToObject(reply, "message_id", id)
        || cJSON_AddStringToObject(reply, "topic", topic_str) == NULL)
    {
        goto done;
    }

    json = cJSON_PrintUnformatted(reply);

done:

    cJSON_Delete(reply);
    free(topic_str);

    return json;
}


char *
ngx_geostream_position_event(const ngx_geostream_position_t *pos,
    const unsigned char *topic, size_t topic_len)
{
    char    *json, *members;
    size_t   len, members_len;
    cJSON   *item;

    /*
     * The event is the message with "topic" first; a "topic" member of the
     * message itself would contradict it, so it is left out.
     */
    item = cJSON_DetachItemFromObjectCaseSensitive(pos->root, "topic");
    cJSON_Delete(item);

    members = cJSON_PrintUnformatted(pos->root);
    if (members == NULL) {
        return NULL;
    }

    /* members is "{...}": reuse everything after its opening brace */
    members_len = strlen(members) - 1;
    len = sizeof("{\"topic\":\"\",") - 1 + topic_len + members_len + 1;

    json = malloc(len);
    if (json == NULL) {
        free(members);
        return NULL;
    }

    len = 0;
    memcpy(json, "{\"topic\":\"", sizeof("{\"topic\":\"") - 1);
    len += sizeof("{\"topic\":\"") - 1;

    /* topics are validated: [a-zA-Z0-9._-] needs no escaping */
    memcpy(json + len, topic, topic_len);
    len += topic_len;
    json[len++] = '"';

    if (members_len > 1) {
        json[len++] = ',';
    }

    memcpy(json + len, members + 1, members_len);
    len += members_len;
    json[len] = '\0';

    free(members);

    return json;
}


char *
ngx_geostream_error_json(const ngx_geostream_error_t *err)
{
    char   *json;
    cJSON  *obj;

    obj = cJSON_CreateObject();
    if (obj == NULL) {
        return NULL;
    }

    json = NULL;

    if (cJSON_AddStringToObject(obj, "error", err->code) != NULL
        && cJSON_AddStringToObject(obj, "detail", err->detail) != NULL)
    {
        json = cJSON_PrintUnformatted(obj);
    }

    cJSON_Delete(obj);

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
