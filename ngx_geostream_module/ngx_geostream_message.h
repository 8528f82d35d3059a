/*
 * Position messages: validation, the JSON the API answers with, and
 * Server-Sent-Events framing.
 *
 * Plain C on purpose: nothing here needs a running nginx, so unit tests and
 * fuzzers link this file alone (with cJSON).  Strings are passed as
 * pointer and length; results are malloc()ed and freed by the caller with
 * free() unless said otherwise.
 */

#ifndef _NGX_GEOSTREAM_MESSAGE_H_INCLUDED_
#define _NGX_GEOSTREAM_MESSAGE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>


#define NGX_GEOSTREAM_NAME_MAX         256
#define NGX_GEOSTREAM_TOPIC_MAX        249
#define NGX_GEOSTREAM_DETAIL_MAX       192


/* why a message was refused: a stable code and a human-readable detail */
typedef struct {
    const char     *code;
    char            detail[NGX_GEOSTREAM_DETAIL_MAX];
} ngx_geostream_error_t;


/* a validated position; all pointers point into "root" */
typedef struct {
    cJSON          *root;
    const char     *name;
    size_t          name_len;
    const cJSON    *message_id;    /* string or number, NULL when absent */
    double          lat;
    double          lon;
    int64_t         ts;            /* ms since the epoch, -1 when absent */
} ngx_geostream_position_t;


/*
 * Parses and validates one position message.  Returns 0 and fills "pos"
 * (release it with ngx_geostream_position_free()), or -1 and fills "err".
 */
int ngx_geostream_position_parse(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len, ngx_geostream_error_t *err);

void ngx_geostream_position_free(ngx_geostream_position_t *pos);

/* the producer's answer: {"name":...,"message_id":...,"topic":...} */
char *ngx_geostream_position_reply(const ngx_geostream_position_t *pos,
    const unsigned char *topic, size_t topic_len);

/*
 * What subscribers receive: {"topic":...} followed by every member of the
 * message ("name", "message_id", "lat", "lon" and any others).
 */
char *ngx_geostream_position_event(const ngx_geostream_position_t *pos,
    const unsigned char *topic, size_t topic_len);

/* {"error":"<code>","detail":"<detail>"} */
char *ngx_geostream_error_json(const ngx_geostream_error_t *err);

/* Kafka's topic naming rules: 1..249 of [a-zA-Z0-9._-], not "." or ".." */
int ngx_geostream_topic_valid(const unsigned char *name, size_t len);

/*
 * Server-Sent-Events framing.  Every line of "data" becomes its own
 * "data:" line (CR, LF and CRLF all count as line breaks), so no payload
 * can end an event early or inject a field.  "id" must not contain line
 * breaks or NUL (the caller builds it); it may be NULL.
 */
size_t ngx_geostream_sse_event_size(const unsigned char *id, size_t id_len,
    const unsigned char *data, size_t data_len);

unsigned char *ngx_geostream_sse_event_write(unsigned char *dst,
    const unsigned char *id, size_t id_len, const unsigned char *data,
    size_t data_len);


#endif /* _NGX_GEOSTREAM_MESSAGE_H_INCLUDED_ */
