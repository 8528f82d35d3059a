/*
 * The streaming consumer location: GET /consumer/{topic} holds a
 * Server-Sent-Events connection (ngx_http_geostream_consumer.c).
 */

#ifndef _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the content handler of a location with geostream_consume */
ngx_int_t ngx_http_geostream_consumer_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_ */
