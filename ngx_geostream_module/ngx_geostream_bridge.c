/*
 * A thread's hand-over to the event loop: a locked list and a pipe.  See
 * ngx_geostream_bridge.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <pthread.h>

#include "ngx_geostream_bridge.h"


static void ngx_geostream_bridge_notified(ngx_event_t *ev);


ngx_int_t
ngx_geostream_bridge_init(ngx_geostream_bridge_t *b, ngx_cycle_t *cycle,
    const char *name, ngx_geostream_bridge_handler_pt handler, void *data)
{
    ngx_memzero(b, sizeof(ngx_geostream_bridge_t));

    b->last = &b->first;
    b->handler = handler;
    b->data = data;
    b->name = name;
    b->notify_write = NGX_INVALID_FILE;

    if (pthread_mutex_init(&b->mutex, NULL) != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "geostream: cannot set up the %s thread's lock", name);
        return NGX_ERROR;
    }

    b->notify = ngx_geostream_pipe_open(cycle, &b->notify_write,
                                        ngx_geostream_bridge_notified);
    if (b->notify == NULL) {
        pthread_mutex_destroy(&b->mutex);
        return NGX_ERROR;
    }

    b->notify->data = b;

    return NGX_OK;
}


void
ngx_geostream_bridge_post(ngx_geostream_bridge_t *b,
    ngx_geostream_event_t *batch, ngx_geostream_event_t **tail)
{
    ngx_uint_t  wake;

    pthread_mutex_lock(&b->mutex);

    /* one byte per batch the loop has not picked up yet is enough */
    wake = (b->first == NULL);

    *b->last = batch;
    b->last = tail;

    pthread_mutex_unlock(&b->mutex);

    if (wake) {
        (void) write(b->notify_write, "c", 1);
    }
}


static void
ngx_geostream_bridge_notified(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_geostream_event_t   *batch;
    ngx_geostream_bridge_t  *b;
#if (NGX_DEBUG)
    ngx_uint_t               n;
    ngx_geostream_event_t   *e;
#endif

    c = ev->data;
    b = c->data;

    ngx_geostream_pipe_drain(c);

    pthread_mutex_lock(&b->mutex);
    batch = b->first;
    b->first = NULL;
    b->last = &b->first;
    pthread_mutex_unlock(&b->mutex);

    if (batch == NULL) {
        return;
    }

#if (NGX_DEBUG)
    n = 0;

    for (e = batch; e; e = e->next) {
        n++;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                   "geostream %s: %ui events handed over, first of \"%V\"",
                   b->name, n, &batch->topic);
#endif

    b->handler(batch, b->data);
}


void
ngx_geostream_bridge_close(ngx_geostream_bridge_t *b)
{
    ngx_geostream_event_t  *ev, *next;

    for (ev = b->first; ev; ev = next) {
        next = ev->next;
        ngx_geostream_event_release(ev);
    }

    b->first = NULL;
    b->last = &b->first;

    ngx_geostream_pipe_close(b->notify, b->notify_write);
    b->notify = NULL;
    b->notify_write = NGX_INVALID_FILE;

    pthread_mutex_destroy(&b->mutex);
}


ngx_connection_t *
ngx_geostream_pipe_open(ngx_cycle_t *cycle, ngx_fd_t *write_fd,
    ngx_event_handler_pt handler)
{
    int                fds[2];
    ngx_connection_t  *c;

    if (pipe(fds) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "geostream: pipe() failed");
        return NULL;
    }

    if (ngx_nonblocking(fds[0]) == -1 || ngx_nonblocking(fds[1]) == -1
        || fcntl(fds[0], F_SETFD, FD_CLOEXEC) == -1
        || fcntl(fds[1], F_SETFD, FD_CLOEXEC) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "geostream: cannot set up the notification pipe");
        goto failed;
    }

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        goto failed;
    }

    c->read->handler = handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_free_connection(c);
        goto failed;
    }

    *write_fd = fds[1];

    return c;

failed:

    close(fds[0]);
    close(fds[1]);

    return NULL;
}


void
ngx_geostream_pipe_close(ngx_connection_t *c, ngx_fd_t write_fd)
{
    if (c != NULL) {
        ngx_close_connection(c);
    }

    if (write_fd != NGX_INVALID_FILE) {
        close(write_fd);
    }
}


void
ngx_geostream_pipe_drain(ngx_connection_t *c)
{
    u_char  buf[64];

    while (read(c->fd, buf, sizeof(buf)) > 0) {
        /* void */
    }
}
