/*
 * Cursors: where a stream is in a topic, and the ids of streams of
 * several topics.
 *
 * A cursor is what every SSE event's "id:" holds: for each partition of
 * the topic, the offset of the next message, "0:1234,1:998".  Offsets are
 * Kafka's, so a cursor taken on one worker or instance means the same
 * position on any other.  A stream of several topics has its own ids, a
 * topic=cursor pair each, separated by semicolons: "a=0:12,1:7;b=0:3".
 *
 * Plain C: no nginx needed, so unit tests and fuzzers reach it.
 */

#ifndef _NGX_GEOSTREAM_CURSOR_H_INCLUDED_
#define _NGX_GEOSTREAM_CURSOR_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_GEOSTREAM_PARTITIONS_MAX  1024

/* the longest cursor: every partition, "1023:9223372036854775807," each */
#define NGX_GEOSTREAM_CURSOR_LEN_MAX                                         \
    (NGX_GEOSTREAM_PARTITIONS_MAX * sizeof("1023:9223372036854775807,"))


/*
 * A topic's position: for each partition, the offset of the next message
 * (Kafka's offsets).  The array is the owner's: a cursor points to it.
 */
typedef struct {
    int64_t   *next;
    size_t     n;                      /* partitions */
} ngx_geostream_cursor_t;


/* the text's exact length: "0:1234,1:998"; 0 for no partition */
size_t ngx_geostream_cursor_len(const ngx_geostream_cursor_t *c);

/* writes the text, every partition from 0 on; returns its end (no NUL) */
unsigned char *ngx_geostream_cursor_write(unsigned char *dst,
    const ngx_geostream_cursor_t *c);

/*
 * Parses a cursor "p:offset,p:offset": each partition below "max" (and
 * NGX_GEOSTREAM_PARTITIONS_MAX) and named once, each offset within int64,
 * the whole at most NGX_GEOSTREAM_CURSOR_LEN_MAX bytes.  Partitions it does
 * not name are at 0.  Returns the number of partitions it spans (highest
 * named + 1), or -1 when it is malformed.  "offsets" has room for "max"
 * partitions.
 */
int ngx_geostream_cursor_parse(const unsigned char *data, size_t len,
    int64_t *offsets, size_t max);


/*
 * The ids of a stream of several topics.
 *
 * One topic's part of a stream's id, to read an id or to write one.  To
 * write, "cursor" gives the topic's position; or, when it is NULL, "text"
 * does, as a client sent it (a topic resumed that has had no event yet).
 */
typedef struct {
    const unsigned char            *topic;
    size_t                          topic_len;
    const ngx_geostream_cursor_t   *cursor;
    const unsigned char            *text;
    size_t                          text_len;
} ngx_geostream_stream_part_t;


/*
 * 1 when "id" is one topic's cursor (it has no '='), not topic=cursor
 * pairs; a stream of several topics refuses such an id.
 */
int ngx_geostream_stream_id_single(const unsigned char *id, size_t len);

/*
 * The next topic=cursor pair of an id, from "*p" (which it moves on) to
 * "last": 1 and the pair's topic and cursor text in "part", 0 when no
 * pair is left, -1 when the pair has no '=' (the id is malformed).  Pairs
 * are separated by ';'; one trailing ';' ends the id.  Nothing is checked
 * of the topic or the cursor: that is for the topics the stream follows.
 */
int ngx_geostream_stream_id_next(const unsigned char **p,
    const unsigned char *last, ngx_geostream_stream_part_t *part);

/*
 * Finds the part of topic "topic" in the topic=cursor pairs of "id" (read
 * with ngx_geostream_stream_id_next()): 1 and its cursor text in "*cursor"
 * and "*cursor_len", 0 when the id does not name the topic (the stream
 * then starts it by since), -1 when any pair of the id is malformed.  A
 * topic named twice is found at its last pair.  Pairs of other topics are
 * ignored, so that a client may follow fewer topics than before.
 */
int ngx_geostream_stream_id_find(const unsigned char *id, size_t len,
    const unsigned char *topic, size_t topic_len,
    const unsigned char **cursor, size_t *cursor_len);

/* the exact length of the id of "n" parts, "a=0:12,1:7;b=0:3" */
size_t ngx_geostream_stream_id_len(const ngx_geostream_stream_part_t *parts,
    size_t n);

/* writes the id of "n" parts, in their order; returns its end (no NUL) */
unsigned char *ngx_geostream_stream_id_write(unsigned char *dst,
    const ngx_geostream_stream_part_t *parts, size_t n);


#endif /* _NGX_GEOSTREAM_CURSOR_H_INCLUDED_ */
