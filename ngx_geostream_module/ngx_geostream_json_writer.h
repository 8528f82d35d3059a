/*
 * The one JSON writer: answers written straight into their buffer, in two
 * passes, measure then write, with no tree built, printed and freed for
 * them.  Strings are escaped as cJSON_PrintUnformatted() escapes them;
 * numbers are printed so that they read back as the same double.
 *
 *     ngx_geostream_jw_init(&w, NULL, 0);        measure
 *     ... the values ...
 *     buf = alloc(w.size);
 *     ngx_geostream_jw_init(&w, buf, w.size);    write
 *     ... the same values ...
 *     if (ngx_geostream_jw_done(&w) != 0) { fail }
 *
 * Commas come by themselves: a value or key after another in the same
 * object or array is preceded by one.  Out of room or too deep, the
 * writer fails, writes nothing more, and says so at the end.
 *
 * Plain C: no nginx needed, so unit tests and fuzzers reach it.
 */

#ifndef _NGX_GEOSTREAM_JSON_WRITER_H_INCLUDED_
#define _NGX_GEOSTREAM_JSON_WRITER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* objects and arrays nest at most this deep (a bit each in "nonempty") */
#define NGX_GEOSTREAM_JW_DEPTH_MAX  32

/* the longest number ngx_geostream_jw_double() writes, "null" too */
#define NGX_GEOSTREAM_JW_NUMBER_MAX  32


typedef struct {
    unsigned char  *pos;               /* NULL: only measure */
    unsigned char  *end;
    size_t          size;              /* bytes the JSON takes so far */
    unsigned        depth;
    uint32_t        nonempty;          /* bit per depth: a comma is due */
    int             failed;            /* out of room or too deep */
} ngx_geostream_json_writer_t;


/* writes into "buf" of "size" bytes; "buf" NULL: only measures */
void ngx_geostream_jw_init(ngx_geostream_json_writer_t *w,
    unsigned char *buf, size_t size);

void ngx_geostream_jw_object(ngx_geostream_json_writer_t *w);
void ngx_geostream_jw_object_end(ngx_geostream_json_writer_t *w);
void ngx_geostream_jw_array(ngx_geostream_json_writer_t *w);
void ngx_geostream_jw_array_end(ngx_geostream_json_writer_t *w);

/* a member's name (NUL-terminated); its value comes next */
void ngx_geostream_jw_key(ngx_geostream_json_writer_t *w, const char *key);

/* a string of "len" bytes, escaped as cJSON escapes them */
void ngx_geostream_jw_string(ngx_geostream_json_writer_t *w, const char *s,
    size_t len);

void ngx_geostream_jw_int(ngx_geostream_json_writer_t *w, int64_t v);
void ngx_geostream_jw_uint(ngx_geostream_json_writer_t *w, uint64_t v);

/*
 * A number as answers print it: integers below 1e15 as such (%lld),
 * others in 15 digits (%1.15g) when they read back as the same double,
 * else in 17; null when it is not finite.  (cJSON prints in 15 digits
 * whatever reads back within an epsilon: a lat could lose its last
 * digits.)
 */
void ngx_geostream_jw_double(ngx_geostream_json_writer_t *w, double v);

void ngx_geostream_jw_bool(ngx_geostream_json_writer_t *w, int v);
void ngx_geostream_jw_null(ngx_geostream_json_writer_t *w);

/* a value that is JSON already (the caller's: it is not checked) */
void ngx_geostream_jw_raw(ngx_geostream_json_writer_t *w,
    const unsigned char *json, size_t len);

/* 0 when the JSON is complete (every object and array closed) and fitted */
int ngx_geostream_jw_done(ngx_geostream_json_writer_t *w);

/*
 * The text of a number as ngx_geostream_jw_double() writes it, into "dst"
 * of at least NGX_GEOSTREAM_JW_NUMBER_MAX bytes (no NUL); its length.
 */
size_t ngx_geostream_jw_number_text(char *dst, double v);


#endif /* _NGX_GEOSTREAM_JSON_WRITER_H_INCLUDED_ */
