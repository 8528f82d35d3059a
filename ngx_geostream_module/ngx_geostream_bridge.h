/*
 * From a worker's thread to its event loop, as nginx's thread pools hand
 * finished tasks back (src/core/ngx_thread_pool.c): the thread appends a
 * batch of events to a locked list, and the event loop takes the whole
 * list when a pipe it watches wakes it up, then gives it to a handler.
 * The thread never touches nginx objects; the loop never waits for the
 * thread but for the lock.
 *
 * Also the notification pipe that the event loop watches, which the
 * producers use for librdkafka's delivery reports too.
 */

#ifndef _NGX_GEOSTREAM_BRIDGE_H_INCLUDED_
#define _NGX_GEOSTREAM_BRIDGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <pthread.h>

#include "ngx_geostream_event.h"


/* called on the event loop with what a thread handed over, in order */
typedef void (*ngx_geostream_bridge_handler_pt)(ngx_geostream_event_t *batch,
    void *data);


typedef struct {
    pthread_mutex_t                   mutex;

    /* under mutex */
    ngx_geostream_event_t            *first;
    ngx_geostream_event_t           **last;

    /* event-loop-only */
    ngx_connection_t                 *notify;
    ngx_fd_t                          notify_write;
    ngx_geostream_bridge_handler_pt   handler;
    void                             *data;
    const char                       *name;       /* for the debug log */
} ngx_geostream_bridge_t;


/*
 * Opens the bridge's pipe; "name" says whose it is in the debug log.
 * NGX_ERROR when it cannot (logged), with nothing left to close.
 */
ngx_int_t ngx_geostream_bridge_init(ngx_geostream_bridge_t *b,
    ngx_cycle_t *cycle, const char *name,
    ngx_geostream_bridge_handler_pt handler, void *data);

/*
 * From the thread: hands a batch over ("tail": the address of its last
 * event's "next"); the event loop owns it from now on
 */
void ngx_geostream_bridge_post(ngx_geostream_bridge_t *b,
    ngx_geostream_event_t *batch, ngx_geostream_event_t **tail);

/*
 * Once the thread that posts has ended: closes the pipe and frees what
 * the event loop has not taken
 */
void ngx_geostream_bridge_close(ngx_geostream_bridge_t *b);


/*
 * A pipe whose read end the event loop watches like a connection (c->data
 * is the caller's to set); another thread writes a byte to "write_fd" to
 * wake it up, and "handler" runs.  NULL when it cannot (logged).
 */
ngx_connection_t *ngx_geostream_pipe_open(ngx_cycle_t *cycle,
    ngx_fd_t *write_fd, ngx_event_handler_pt handler);
void ngx_geostream_pipe_close(ngx_connection_t *c, ngx_fd_t write_fd);
/* reads what woke the loop up, so that the pipe is quiet again */
void ngx_geostream_pipe_drain(ngx_connection_t *c);


#endif /* _NGX_GEOSTREAM_BRIDGE_H_INCLUDED_ */
