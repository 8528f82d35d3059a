/*
 * The producer location: POST /producer/{topic}, validated and answered
 * here, produced by the worker's producers (ngx_geostream_producer.h).
 */

#ifndef _NGX_HTTP_GEOSTREAM_PRODUCER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_PRODUCER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_producer.h"


ngx_int_t ngx_http_geostream_producer_handler(ngx_http_request_t *r);

/* the producers' callback with each report a request waits for */
void ngx_http_geostream_producer_delivered(ngx_geostream_producers_t *pr,
    ngx_geostream_delivery_t *d);


#endif /* _NGX_HTTP_GEOSTREAM_PRODUCER_H_INCLUDED_ */
