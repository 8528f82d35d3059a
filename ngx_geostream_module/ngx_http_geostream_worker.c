/*
 * A worker's state and its start and exit.  See ngx_http_geostream_worker.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_geostream_worker.h"
#include "ngx_http_geostream_stats.h"


static void ngx_http_geostream_worker_dispatch(ngx_geostream_event_t *batch,
    void *data);


ngx_http_geostream_worker_t  ngx_http_geostream_worker;


ngx_int_t
ngx_http_geostream_worker_init(ngx_cycle_t *cycle,
    ngx_http_geostream_main_conf_t *gmcf,
    ngx_geostream_delivered_pt delivered)
{
    ngx_http_geostream_worker_t  *wk;

    wk = &ngx_http_geostream_worker;

    ngx_memzero(wk, sizeof(ngx_http_geostream_worker_t));
    wk->cycle = cycle;

    /* without a slot of its own, the worker counts where no one looks */
    wk->stats = NULL;

    if (gmcf->kafka.brokers.len) {
        wk->stats = ngx_http_geostream_stats_attach(gmcf->stats_zone,
                                                    cycle->log);
    }

    if (wk->stats == NULL) {
        wk->stats = &wk->stats_local;
    }

    ngx_geostream_reader_init(&wk->reader, cycle, &gmcf->kafka, wk->stats,
                              ngx_http_geostream_worker_dispatch, wk);
    ngx_geostream_replayer_init(&wk->replayer, cycle, &gmcf->kafka, wk->stats,
                                ngx_http_geostream_worker_dispatch, wk);
    ngx_http_geostream_topics_init(&wk->topics, &wk->reader, &wk->replayer,
                                   gmcf->history, gmcf->history_bytes);

    if (gmcf->kafka.brokers.len == 0) {
        return NGX_OK;
    }

    wk->conf = gmcf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "geostream worker %P: starting its producers", ngx_pid);

    return ngx_geostream_producer_init(&wk->producers, cycle, &gmcf->kafka,
                                       wk->stats, delivered);
}


void
ngx_http_geostream_worker_exit(ngx_cycle_t *cycle)
{
    ngx_msec_t                    deadline;
    ngx_http_geostream_worker_t  *wk;

    wk = &ngx_http_geostream_worker;

    if (wk->conf == NULL) {
        return;
    }

    /* streams first: a client that has not read all is reset */
    ngx_http_geostream_topics_exit(&wk->topics);

    /*
     * One deadline for all that the worker waits for on its way out; a
     * stopping worker may have set it while requests waited
     */
    deadline = ngx_geostream_producer_deadline(&wk->producers);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "geostream worker %P: exit, %M ms left for kafka",
                   ngx_pid, (ngx_msec_int_t) (deadline - ngx_current_msec));

    /* the threads before the loop goes: nothing is handed over after */
    ngx_geostream_replay_stop(&wk->replayer, deadline);
    ngx_geostream_reader_stop(&wk->reader, deadline);

    ngx_geostream_producer_exit(&wk->producers, deadline);

    /* the topics once the reader, which hands their events, has stopped */
    ngx_http_geostream_topics_free(&wk->topics);

    wk->conf = NULL;
}


/* a batch from the reader or the replay thread, on the event loop */
static void
ngx_http_geostream_worker_dispatch(ngx_geostream_event_t *batch, void *data)
{
    ngx_http_geostream_worker_t  *wk = data;

    ngx_http_geostream_topics_dispatch(&wk->topics, batch);
}
