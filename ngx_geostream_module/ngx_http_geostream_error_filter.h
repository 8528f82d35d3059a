/*
 * JSON for the errors nginx itself answers in geostream locations (see
 * ngx_http_geostream_error_filter.c).
 */

#ifndef _NGX_HTTP_GEOSTREAM_ERROR_FILTER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_ERROR_FILTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* puts the filter in nginx's chains (the module's postconfiguration) */
ngx_int_t ngx_http_geostream_error_filter_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_GEOSTREAM_ERROR_FILTER_H_INCLUDED_ */
