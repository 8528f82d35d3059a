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

#include "ngx_geostream_json_writer.h"


#define NGX_GEOSTREAM_NAME_MAX         256
#define NGX_GEOSTREAM_TOPIC_MAX        249
#define NGX_GEOSTREAM_DETAIL_MAX       192


/* why a message was refused: a stable code and a human-readable detail */
typedef struct {
    const char     *code;
    char            detail[NGX_GEOSTREAM_DETAIL_MAX];
} ngx_geostream_error_t;


/*
 * A validated position.  All pointers point into "root", which the
 * position owns.  "members" is the object whose other members travel with
 * the position: the message itself, or a GeoJSON Feature's "properties".
 *
 * A position read by ngx_geostream_position_scan() has no "root": "name"
 * (not NUL-terminated) and "message_id_text" point into the bytes read.
 */
typedef struct {
    cJSON          *root;
    const cJSON    *members;
    const char     *name;
    size_t          name_len;
    const cJSON    *message_id;    /* string or number, NULL when absent */
    const char     *message_id_text;        /* or its JSON text, as sent */
    size_t          message_id_text_len;
    double          lat;
    double          lon;
    int64_t         ts;            /* ms since the epoch, -1 when absent */
} ngx_geostream_position_t;


/*
 * One record of a produce request: a position and the bytes to store, the
 * record's own bytes in the body (as sent, whatever the body's form).
 */
typedef struct {
    ngx_geostream_position_t   pos;
    const unsigned char       *value;
    size_t                     value_len;
} ngx_geostream_record_t;


/*
 * Parses and validates one position message: a single JSON value, either
 * an object with "name", "lat", "lon" (and optional "message_id", "ts"),
 * or a GeoJSON Feature with a Point geometry and "properties.name".
 * Returns 0 and fills "pos" (release it with ngx_geostream_position_free()),
 * or -1 and fills "err".
 */
int ngx_geostream_position_parse(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len, ngx_geostream_error_t *err);

void ngx_geostream_position_free(ngx_geostream_position_t *pos);

/* sets "err" to "code" and a printf-style detail; returns -1 */
int ngx_geostream_fail(ngx_geostream_error_t *err, const char *code,
    const char *fmt, ...);

/*
 * The strict JSON check (ngx_geostream_json.c): 0 when "data" is one JSON
 * value by RFC 8259 whose strings are valid UTF-8 without U+0000, whose
 * objects name no member twice and whose numbers are finite doubles, with
 * no byte order mark; -1 and "err" (invalid_json, naming the byte or the
 * member) otherwise.  ngx_geostream_position_parse() and
 * ngx_geostream_records_parse() apply it to all they accept.
 */
int ngx_geostream_json_check(const unsigned char *data, size_t len,
    ngx_geostream_error_t *err);

/*
 * The end of the JSON value at "p", in bytes that passed
 * ngx_geostream_json_check(): it checks nothing itself.
 */
const unsigned char *ngx_geostream_json_skip(const unsigned char *p,
    const unsigned char *last);

/* the length (1 to 4) of the UTF-8 character at "p", 0 if it is not one */
size_t ngx_geostream_utf8_char(const unsigned char *p, size_t len);

/* 1 when "p" is valid UTF-8: no overlong form, surrogate, or truncation */
int ngx_geostream_utf8_valid(const unsigned char *p, size_t len);

/* 1 when the (valid) UTF-8 "p" has a C0 or C1 control character or DEL */
int ngx_geostream_utf8_has_control(const unsigned char *p, size_t len);

/* at most "max" bytes of the UTF-8 "p", not cutting a character */
size_t ngx_geostream_utf8_cut(const unsigned char *p, size_t len,
    size_t max);

/*
 * The produce path's fast reader (ngx_geostream_scan.c): 0 and "pos" for
 * a single plain position that it reads exactly as
 * ngx_geostream_position_parse() would, -1 for anything else, valid or
 * not, which that function then decides.
 */
int ngx_geostream_position_scan(ngx_geostream_position_t *pos,
    const unsigned char *data, size_t len);

/*
 * Parses a produce request's body into records: one JSON value (one
 * record), a JSON array of them, or, with "ndjson" set, one per line.
 * All or nothing: on error nothing is returned and "err" names the index
 * of the first bad record.  "*batch" tells whether the body was a batch
 * (array or NDJSON), which the answer mirrors.
 */
int ngx_geostream_records_parse(ngx_geostream_record_t **records,
    size_t *n, int *batch, const unsigned char *data, size_t len,
    int ndjson, ngx_geostream_error_t *err);

void ngx_geostream_records_free(ngx_geostream_record_t *records, size_t n);

/*
 * One record's answer: {"name":...,"message_id":...,"topic":...}, plus
 * "partition" and "offset" when partition >= 0, plus "error" when not
 * NULL.  "topic" and "error" are NUL-terminated.  The writer needs at
 * most ngx_geostream_reply_size() bytes (for any partition and offset),
 * writes no NUL, and returns the end of what it wrote.
 * ngx_geostream_reply_json() writes the same with a JSON writer (a value
 * of an array, say), measuring or writing.
 */
void ngx_geostream_reply_json(ngx_geostream_json_writer_t *w,
    const ngx_geostream_position_t *pos, const char *topic,
    int32_t partition, int64_t offset, const char *error);
size_t ngx_geostream_reply_size(const ngx_geostream_position_t *pos,
    const char *topic, const char *error);
char *ngx_geostream_reply_write(char *dst,
    const ngx_geostream_position_t *pos, const char *topic,
    int32_t partition, int64_t offset, const char *error);

/*
 * What subscribers receive: {"topic","name","message_id","lat","lon"}
 * ("message_id" only when the message has one), then the message's other
 * members.  "topic" is NUL-terminated.
 */
char *ngx_geostream_position_event(const ngx_geostream_position_t *pos,
    const char *topic);

/*
 * {"error":"<code>","detail":"<detail>"}: with a JSON writer, or
 * malloc()ed and NUL-terminated (NULL when out of memory).
 */
void ngx_geostream_error_write(ngx_geostream_json_writer_t *w,
    const ngx_geostream_error_t *err);
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
