/*
 * The status location: the worker's and the instance's figures, as JSON
 * or for Prometheus (see ngx_http_geostream_status.c).
 */

#ifndef _NGX_HTTP_GEOSTREAM_STATUS_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the content handler of a geostream_status location */
ngx_int_t ngx_http_geostream_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_GEOSTREAM_STATUS_H_INCLUDED_ */
