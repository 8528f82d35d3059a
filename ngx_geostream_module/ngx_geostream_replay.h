/*
 * Replays from Kafka: the past of a topic that a worker's history ring no
 * longer holds, for the subscribers that ask for it (a cursor from before
 * the ring, or since= further back).
 *
 * One replay thread per worker, started on first use, with a consumer
 * instance of its own, runs the replays one after the other; it never
 * opens a consumer per client.  Each replayed message becomes an event
 * for that replay's owner alone (REPLAY), handed to the event loop through
 * the replayer's bridge; a REPLAY_DONE event ends it, and the owner then
 * continues from the history ring and the live feed.
 */

#ifndef _NGX_GEOSTREAM_REPLAY_H_INCLUDED_
#define _NGX_GEOSTREAM_REPLAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <librdkafka/rdkafka.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_kafka_thread.h"
#include "ngx_geostream_stats.h"


/*
 * A read of a topic's past from Kafka, for one subscriber whose position
 * the history ring no longer has: from "rd"'s offsets (or, with "since",
 * the offsets of that time) up to, not including, "to".  The event loop
 * owns "owner" and frees the replay once it has its REPLAY_DONE event.
 */
struct ngx_geostream_replay_s {
    ngx_geostream_replay_t     *next;
    void                       *owner;          /* NULL: the owner left */
    ngx_geostream_reading_t     rd;
    int64_t                    *to;
    int64_t                     since;          /* ms, or -1 */
    unsigned                    notify_retention:1;
};


/* the worker's replay thread */
typedef struct {

    ngx_geostream_kafka_thread_t      kt;         /* its handle, its lock */

    /* under kt.mutex; kt.cond says there is one more, or stop */
    ngx_geostream_replay_t           *jobs;
    ngx_geostream_replay_t          **jobs_tail;
} ngx_geostream_replayer_t;


/*
 * Sets the replayer up, starting nothing: events will go to "handler"
 * with "data", on the event loop of "cycle"
 */
void ngx_geostream_replayer_init(ngx_geostream_replayer_t *rs,
    ngx_cycle_t *cycle, ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_stats_t *stats, ngx_geostream_bridge_handler_pt handler,
    void *data);

/*
 * Starts a replay (and the replay thread, on first use); "from" and "to"
 * have n partitions each.  NULL when it cannot.
 */
ngx_geostream_replay_t *ngx_geostream_replay_start(
    ngx_geostream_replayer_t *rs, ngx_str_t *topic, const int64_t *from,
    const int64_t *to, size_t n, int64_t since, ngx_uint_t notify_retention,
    void *owner);

/* the event loop's, once it has the replay's REPLAY_DONE event */
void ngx_geostream_replay_free(ngx_geostream_replay_t *rp);

/*
 * Stops the thread, waiting for it until "deadline" (ngx_current_msec's
 * clock); a thread still in a call to Kafka then is left to the exiting
 * process.  Nothing to do when it was not started.
 */
void ngx_geostream_replay_stop(ngx_geostream_replayer_t *rs,
    ngx_msec_t deadline);


#endif /* _NGX_GEOSTREAM_REPLAY_H_INCLUDED_ */
