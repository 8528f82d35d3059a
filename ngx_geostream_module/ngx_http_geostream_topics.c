/*
 * The worker's topics.  The reader thread hands over ready-made events in
 * batches; each batch is matched here to the members (a stream's
 * subscription to a topic) of its topics, and every subscriber it reached
 * is written once (ngx_http_geostream_subscriber.c).  Subscribers share
 * the events' bytes: a subscriber only holds references, released once
 * sent.  Each topic keeps its recent events in a history ring, from which
 * a new stream gets what it asked for from before now; what the ring no
 * longer has is replayed from Kafka first.
 *
 * A stream may follow several topics (GET /consumer/a,b).  Each event's
 * id is then the cursor of every topic of the stream, "a=0:12,1:7;b=0:3",
 * written for the subscriber in front of the event's shared bytes.
 */

#include "ngx_geostream_cursor.h"
#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_topics.h"


/* said before a replay that cannot start where the client asked */
#define NGX_HTTP_GEOSTREAM_GAP                                               \
    "event: gap\ndata: {\"reason\":\"not_in_history\",\"detail\":"           \
    "\"this server no longer has every event since the requested position;"  \
    " the stream resumes with the oldest it has\"}\n\n"


static ngx_http_geostream_topic_t *ngx_http_geostream_topic_find(
    ngx_http_geostream_topics_t *topics, ngx_str_t *name);
static void ngx_http_geostream_topic_ready(ngx_http_geostream_topics_t *topics,
    ngx_http_geostream_topic_t *topic, ngx_geostream_event_t *ev);
static void ngx_http_geostream_pending_ready(
    ngx_http_geostream_topics_t *topics);
static void ngx_http_geostream_topic_reset(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_topic_begin(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_topic_keep(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_event_hold(ngx_geostream_event_t **ref,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_member_replay(ngx_http_geostream_member_t *m);
static ngx_int_t ngx_http_geostream_member_kafka(
    ngx_http_geostream_member_t *m);
static void ngx_http_geostream_member_replayed(ngx_geostream_replay_t *rp);
static ngx_uint_t ngx_http_geostream_dispatch_live(
    ngx_http_geostream_topic_t *topic, ngx_geostream_event_t *ev,
    ngx_http_geostream_sub_t **dirty);
static void ngx_http_geostream_dispatch_replay(ngx_geostream_event_t *ev,
    ngx_http_geostream_sub_t **dirty);
static ngx_int_t ngx_http_geostream_member_append(
    ngx_http_geostream_member_t *m, ngx_geostream_event_t *ev,
    ngx_uint_t replayed);
static u_char *ngx_http_geostream_stream_id(ngx_http_geostream_sub_t *sub,
    size_t *len);
static void ngx_http_geostream_member_where(ngx_http_geostream_member_t *m,
    ngx_geostream_stream_part_t *part);


void
ngx_http_geostream_topics_init(ngx_http_geostream_topics_t *topics,
    ngx_geostream_reader_t *reader, ngx_geostream_replayer_t *replayer,
    ngx_uint_t history, size_t history_bytes)
{
    ngx_memzero(topics, sizeof(ngx_http_geostream_topics_t));

    ngx_queue_init(&topics->queue);
    ngx_rbtree_init(&topics->tree, &topics->sentinel,
                    ngx_str_rbtree_insert_value);

    topics->reader = reader;
    topics->replayer = replayer;
    topics->history = history;
    topics->history_bytes = history_bytes;
}


/* the worker's topic of that name, followed from now on if it was not */
ngx_http_geostream_topic_t *
ngx_http_geostream_topics_get(ngx_http_geostream_topics_t *topics,
    ngx_str_t *name, ngx_log_t *log)
{
    ngx_http_geostream_topic_t  *topic;

    topic = ngx_http_geostream_topic_find(topics, name);
    if (topic != NULL) {
        return topic;
    }

    /* a worker's topics live until it exits */
    topic = ngx_calloc(sizeof(ngx_http_geostream_topic_t) + name->len, log);
    if (topic == NULL) {
        return NULL;
    }

    topic->name.len = name->len;
    topic->name.data = (u_char *) (topic + 1);
    ngx_memcpy(topic->name.data, name->data, name->len);
    ngx_queue_init(&topic->subscribers);
    ngx_queue_init(&topic->waiting);
    ngx_queue_init(&topic->replaying);

    topic->topics = topics;

    if (ngx_geostream_history_init(&topic->history, topics->history,
                                   topics->history_bytes)
        != 0)
    {
        ngx_free(topic);
        return NULL;
    }

    if (ngx_geostream_reader_follow(topics->reader, &topic->name) != NGX_OK)
    {
        ngx_geostream_history_free(&topic->history);
        ngx_free(topic);
        return NULL;
    }

    ngx_queue_insert_tail(&topics->queue, &topic->queue);

    topic->sn.node.key = ngx_crc32_long(name->data, name->len);
    topic->sn.str = topic->name;
    ngx_rbtree_insert(&topics->tree, &topic->sn.node);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "geostream topic \"%V\" followed", &topic->name);

    return topic;
}


static ngx_http_geostream_topic_t *
ngx_http_geostream_topic_find(ngx_http_geostream_topics_t *topics,
    ngx_str_t *name)
{
    /* the node is the topic's first member */
    return (ngx_http_geostream_topic_t *)
           ngx_str_rbtree_lookup(&topics->tree, name,
                                 ngx_crc32_long(name->data, name->len));
}


ngx_int_t
ngx_http_geostream_topic_partitions(ngx_http_geostream_topic_t *topic)
{
    return topic->ready ? (ngx_int_t) topic->history.npartitions : -1;
}


void
ngx_http_geostream_member_init(ngx_http_geostream_member_t *m,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_topic_t *topic,
    ngx_http_geostream_start_t *start)
{
    ngx_memzero(m, sizeof(ngx_http_geostream_member_t));

    m->sub = sub;
    m->topic = topic;
    m->start = *start;
    m->placed = start->placed;
}


void
ngx_http_geostream_member_join(ngx_http_geostream_member_t *m)
{
    ngx_http_geostream_topic_t  *topic;

    topic = m->topic;

    /* until its topic is ready, a member waits: nothing can be missed */
    ngx_queue_insert_tail(topic->ready ? &topic->subscribers
                                       : &topic->waiting,
                          &m->queue);
    topic->nsubscribers++;
    m->joined = 1;
}


void
ngx_http_geostream_member_catch_up(ngx_http_geostream_member_t *m)
{
    /* a member that waits for its topic catches up once it is read */
    if (m->topic->ready) {
        ngx_http_geostream_member_replay(m);
    }
}


/* no more events for the stream: it leaves its topics' queues */
void
ngx_http_geostream_topics_leave(ngx_http_geostream_sub_t *sub)
{
    ngx_uint_t                    i;
    ngx_http_geostream_member_t  *m;

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];

        if (m->replay) {
            /* the replay runs on; its events find no owner */
            m->replay->owner = NULL;
            m->replay = NULL;
        }

        if (m->position) {
            ngx_geostream_event_release(m->position);
            m->position = NULL;
        }

        if (m->joined) {
            ngx_queue_remove(&m->queue);
            m->topic->nsubscribers--;
            m->joined = 0;
        }
    }
}


void
ngx_http_geostream_topics_wait(ngx_http_geostream_topics_t *topics,
    ngx_queue_t *q, ngx_http_geostream_pending_pt handler)
{
    if (topics->pending.next == NULL) {
        ngx_queue_init(&topics->pending);
    }

    topics->pending_handler = handler;
    ngx_queue_insert_tail(&topics->pending, q);
}


void
ngx_http_geostream_topics_unwait(ngx_queue_t *q)
{
    ngx_queue_remove(q);
}


/*
 * The reader thread reads the topic now: the history begins where it
 * began, and the subscribers that waited for this start.
 */
static void
ngx_http_geostream_topic_ready(ngx_http_geostream_topics_t *topics,
    ngx_http_geostream_topic_t *topic, ngx_geostream_event_t *ev)
{
    ngx_queue_t                  *q;
    ngx_http_geostream_member_t  *m;

    if (topic->ready) {
        return;
    }

    ngx_http_geostream_topic_begin(topic, ev);

    topic->ready = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "geostream topic \"%V\" ready, %uz partitions",
                   &topic->name, topic->history.npartitions);

    /* until a message comes, the topic stands where reading began */
    ngx_http_geostream_event_hold(&topic->last, ev);

    while (!ngx_queue_empty(&topic->waiting)) {
        q = ngx_queue_head(&topic->waiting);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&topic->subscribers, q);

        m = ngx_queue_data(q, ngx_http_geostream_member_t, queue);
        ngx_http_geostream_member_replay(m);
        ngx_http_geostream_sub_flush(m->sub);
    }

    ngx_http_geostream_pending_ready(topics);
}


/* a topic is read now: the streams that waited for it may go on */
static void
ngx_http_geostream_pending_ready(ngx_http_geostream_topics_t *topics)
{
    ngx_queue_t  *q, *next;

    if (topics->pending.next == NULL) {
        return;
    }

    for (q = ngx_queue_head(&topics->pending);
         q != ngx_queue_sentinel(&topics->pending);
         q = next)
    {
        next = ngx_queue_next(q);

        /* it leaves the list if it goes on; no other stream does */
        topics->pending_handler(q);
    }
}


/*
 * A partition's log was reset: the ring's events no longer come before
 * what is read next, so the ring starts again from the reset's cursor.
 */
static void
ngx_http_geostream_topic_reset(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    ngx_geostream_event_t  *old;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "geostream topic \"%V\" reset, %uz events dropped",
                   &topic->name, topic->history.count);

    while ((old = ngx_geostream_history_shift(&topic->history)) != NULL) {
        ngx_geostream_event_release(old);
    }

    ngx_http_geostream_topic_begin(topic, ev);
}


/* the history ring holds the topic from the cursor of "ev" on */
static void
ngx_http_geostream_topic_begin(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    /* a cursor has at most NGX_GEOSTREAM_PARTITIONS_MAX, as ids are read */
    if (ev->cursor.n > NGX_GEOSTREAM_PARTITIONS_MAX
        || ngx_geostream_history_begin(&topic->history, ev->cursor.next,
                                       ev->cursor.n, ev->timestamp)
           != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: bad start of topic \"%V\": %uz partitions",
                      &topic->name, ev->cursor.n);
    }
}


/*
 * The history ring keeps a reference; what it lets go is released.  An
 * event counts for the memory it was allocated with.
 */
static void
ngx_http_geostream_topic_keep(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    ngx_geostream_event_t  *evicted;

    while ((evicted = ngx_geostream_history_evict(&topic->history, ev->size))
           != NULL)
    {
        ngx_geostream_event_release(evicted);
    }

    if (ngx_geostream_history_push(&topic->history, ev, ev->size,
                                   ev->partition, ev->offset, ev->timestamp)
        == 0)
    {
        ev->refs++;
    }
}


/* "*ref" holds a reference to "ev" instead of what it held */
static void
ngx_http_geostream_event_hold(ngx_geostream_event_t **ref,
    ngx_geostream_event_t *ev)
{
    if (*ref == ev) {
        return;
    }

    ev->refs++;

    if (*ref) {
        ngx_geostream_event_release(*ref);
    }

    *ref = ev;
}


/*
 * Sends a new subscriber what it asked for from before now: the history
 * ring's events after its cursor, or since its time, that pass its
 * filters.  It then joins the live feed in the same turn of the event
 * loop, so nothing falls between the two and nothing comes twice.  When
 * the ring no longer reaches back that far, the part before the ring is
 * read from Kafka first (ngx_http_geostream_member_kafka()); only if that
 * cannot be done does the stream say so with a "gap" event and go on with
 * what the ring has.
 */
static void
ngx_http_geostream_member_replay(ngx_http_geostream_member_t *m)
{
    size_t                                i;
    int64_t                               next;
    ngx_uint_t                            covered, n;
    ngx_geostream_event_t                *ev;
    ngx_geostream_history_t              *h;
    ngx_http_geostream_sub_t             *sub;
    ngx_http_geostream_start_t           *st;
    const ngx_geostream_history_entry_t  *e;

    sub = m->sub;
    st = &m->start;

    if (st->mode == NGX_HTTP_GEOSTREAM_LATEST) {
        /* the stream joins the topic where it stands now */
        if (sub->nmembers > 1 && m->topic->last) {
            ngx_http_geostream_event_hold(&m->position, m->topic->last);
            m->placed = 1;
        }

        return;
    }

    h = &m->topic->history;

    covered = (st->mode == NGX_HTTP_GEOSTREAM_CURSOR)
              ? ngx_geostream_history_covers(h, st->cursor, st->ncursor)
              : ngx_geostream_history_covers_time(h, st->since);

    if (!covered) {
        if (ngx_http_geostream_member_kafka(m) == NGX_OK) {
            return;
        }

        (void) ngx_http_geostream_sub_append(sub, NULL,
                                       (u_char *) NGX_HTTP_GEOSTREAM_GAP,
                                       sizeof(NGX_HTTP_GEOSTREAM_GAP) - 1, 0);
    }

    n = 0;

    for (i = 0; (e = ngx_geostream_history_at(h, i)) != NULL; i++) {
        ev = e->data;

        if (st->mode == NGX_HTTP_GEOSTREAM_CURSOR) {
            next = ((size_t) e->partition < st->ncursor)
                   ? st->cursor[e->partition] : 0;

            if (e->offset < next) {
                continue;
            }

        } else if (e->timestamp < st->since) {
            continue;
        }

        if (!ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                        ev->name.len, ev->lat, ev->lon))
        {
            continue;
        }

        (void) ngx_http_geostream_member_append(m, ev, 1);
        n++;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, sub->connection->log, 0,
                   "geostream subscriber resumes \"%V\" from history%s: "
                   "%ui of its %uz events", &m->topic->name,
                   covered ? "" : " (gap)", n, h->count);
}


/*
 * Asks the worker's replay thread for the topic's past from the member's
 * position up to where the history ring begins.  Until that is done the
 * member is off the live feed; the ring keeps what comes meanwhile.
 */
static ngx_int_t
ngx_http_geostream_member_kafka(ngx_http_geostream_member_t *m)
{
    size_t                       n, p;
    int64_t                     *from;
    ngx_geostream_history_t     *h;
    ngx_http_geostream_start_t  *st;

    h = &m->topic->history;
    n = h->npartitions;
    st = &m->start;

    from = ngx_pcalloc(m->sub->pool,
                       (n ? n : 1) * sizeof(int64_t));
    if (from == NULL) {
        return NGX_ERROR;
    }

    for (p = 0; st->mode == NGX_HTTP_GEOSTREAM_CURSOR && p < n; p++) {
        from[p] = (p < st->ncursor) ? st->cursor[p] : 0;
    }

    m->replay = ngx_geostream_replay_start(m->topic->topics->replayer,
                          &m->topic->name, from, h->start, n,
                          st->mode == NGX_HTTP_GEOSTREAM_TIME ? st->since : -1,
                          st->mode == NGX_HTTP_GEOSTREAM_CURSOR
                          && !st->beginning,
                          m);
    if (m->replay == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, m->sub->connection->log, 0,
                   "geostream replay of \"%V\" from Kafka starts: "
                   "%uz partitions, %s %L", &m->topic->name, n,
                   st->mode == NGX_HTTP_GEOSTREAM_TIME ? "since"
                                                       : "cursor of",
                   st->mode == NGX_HTTP_GEOSTREAM_TIME ? st->since
                                                  : (int64_t) st->ncursor);

    ngx_queue_remove(&m->queue);
    ngx_queue_insert_tail(&m->topic->replaying, &m->queue);

    return NGX_OK;
}


/* a replay from Kafka is over: the history ring and live feed go on */
static void
ngx_http_geostream_member_replayed(ngx_geostream_replay_t *rp)
{
    ngx_http_geostream_member_t  *m;

    m = rp->owner;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "geostream replay of \"%*s\" from Kafka is over%s",
                   rp->rd.name_len, rp->rd.name,
                   m ? "" : ", its subscriber left");

    if (m == NULL) {
        ngx_geostream_replay_free(rp);
        return;
    }

    m->replay = NULL;

    /* the replay ended where the ring began: resume from there */
    if (ngx_http_geostream_start_after(&m->start, m->sub->pool, rp->to,
                                       rp->rd.partitions)
        != NGX_OK)
    {
        ngx_geostream_replay_free(rp);
        ngx_http_geostream_sub_lost(m->sub);
        return;
    }

    ngx_geostream_replay_free(rp);

    ngx_queue_remove(&m->queue);
    ngx_queue_insert_tail(&m->topic->subscribers, &m->queue);

    /* if the ring moved on meanwhile, this asks Kafka for the difference */
    ngx_http_geostream_member_replay(m);
}


void
ngx_http_geostream_topics_dispatch(ngx_http_geostream_topics_t *topics,
    ngx_geostream_event_t *batch)
{
    ngx_uint_t                   nevents, run, reached;
    ngx_geostream_event_t       *ev, *next;
    ngx_http_geostream_sub_t    *dirty;
    ngx_http_geostream_topic_t  *topic;

    dirty = NULL;
    topic = NULL;
    nevents = 0;
    run = 0;
    reached = 0;

    for (ev = batch; ev; ev = next) {
        next = ev->next;
        nevents++;

        /* a batch mostly holds runs of one topic */
        if (topic == NULL
            || topic->name.len != ev->topic.len
            || ngx_strncmp(topic->name.data, ev->topic.data, ev->topic.len)
               != 0)
        {
            if (topic && run) {
                ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                               "geostream dispatch: %ui events of \"%V\" "
                               "to %ui subscribers", run, &topic->name,
                               reached);
            }

            /* the thread reads only topics that the loop asked for */
            topic = ngx_http_geostream_topic_find(topics, &ev->topic);
            run = 0;
            reached = 0;
        }

        if (topic == NULL) {
            ngx_geostream_event_release(ev);
            continue;
        }

        run++;

        switch (ev->type) {

        case NGX_GEOSTREAM_EVENT_TOPIC_READY:
            ngx_http_geostream_topic_ready(topics, topic, ev);
            break;

        case NGX_GEOSTREAM_EVENT_MESSAGE:
        case NGX_GEOSTREAM_EVENT_RESET:
            reached += ngx_http_geostream_dispatch_live(topic, ev, &dirty);
            break;

        default:
            /* a replay's: for its owner alone */
            ngx_http_geostream_dispatch_replay(ev, &dirty);
        }

        ngx_geostream_event_release(ev);
    }

    if (topic && run) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "geostream dispatch: %ui events of \"%V\" "
                       "to %ui subscribers", run, &topic->name, reached);
    }

    run = ngx_http_geostream_sub_flush_marked(dirty);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "geostream dispatch: batch of %ui events, "
                   "%ui subscribers written", nevents, run);
}


/*
 * A message, or a partition's reset, for the topic's live members: how
 * many it reached.  A reset is news to every stream of the topic.
 */
static ngx_uint_t
ngx_http_geostream_dispatch_live(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev, ngx_http_geostream_sub_t **dirty)
{
    ngx_uint_t                    n;
    ngx_queue_t                  *q;
    ngx_http_geostream_sub_t     *sub;
    ngx_http_geostream_member_t  *m;

    if (ev->type == NGX_GEOSTREAM_EVENT_RESET) {
        ngx_http_geostream_topic_reset(topic, ev);

    } else {
        topic->events++;
        ngx_http_geostream_topic_keep(topic, ev);
    }

    ngx_http_geostream_event_hold(&topic->last, ev);

    n = 0;

    for (q = ngx_queue_head(&topic->subscribers);
         q != ngx_queue_sentinel(&topic->subscribers);
         q = ngx_queue_next(q))
    {
        m = ngx_queue_data(q, ngx_http_geostream_member_t, queue);
        sub = m->sub;

        if (ev->type == NGX_GEOSTREAM_EVENT_MESSAGE
            && !ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                           ev->name.len, ev->lat, ev->lon))
        {
            continue;
        }

        if (ngx_http_geostream_member_append(m, ev, 0) != NGX_OK) {
            ngx_http_geostream_sub_lost(sub);
        }

        ngx_http_geostream_sub_mark(sub, dirty);
        n++;
    }

    return n;
}


/* an event of a replay from Kafka: for the member that asked for it */
static void
ngx_http_geostream_dispatch_replay(ngx_geostream_event_t *ev,
    ngx_http_geostream_sub_t **dirty)
{
    ngx_http_geostream_sub_t     *sub;
    ngx_http_geostream_member_t  *m;

    m = ev->replay->owner;
    sub = m ? m->sub : NULL;

    if (ev->type == NGX_GEOSTREAM_EVENT_REPLAY_DONE) {
        ngx_http_geostream_member_replayed(ev->replay);

    } else if (ev->type == NGX_GEOSTREAM_EVENT_REPLAY_NOTICE) {
        /* a notice has no id: it goes as it is */
        if (sub) {
            (void) ngx_http_geostream_sub_append(sub, ev, ev->data.data,
                                                 ev->data.len, 1);
        }

    } else if (sub
               && ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                             ev->name.len, ev->lat, ev->lon))
    {
        (void) ngx_http_geostream_member_append(m, ev, 1);
    }

    if (sub) {
        ngx_http_geostream_sub_mark(sub, dirty);
    }
}


/*
 * Queues an event of a member's topic.  A stream of one topic sends the
 * event's bytes as they are; a stream of several sends its own id line,
 * every topic's cursor, in front of the event's bytes after their id.
 */
static ngx_int_t
ngx_http_geostream_member_append(ngx_http_geostream_member_t *m,
    ngx_geostream_event_t *ev, ngx_uint_t replayed)
{
    u_char                    *line;
    size_t                     len, skip;
    ngx_http_geostream_sub_t  *sub;

    sub = m->sub;

    if (sub->nmembers == 1) {
        return ngx_http_geostream_sub_append(sub, ev, ev->data.data,
                                             ev->data.len, replayed);
    }

    /* the event's own "id: ...\n", its cursor as text */
    len = ngx_geostream_cursor_len(&ev->cursor);
    skip = len ? sizeof("id: ") - 1 + len + 1 : 0;

    ngx_http_geostream_event_hold(&m->position, ev);
    m->placed = 1;

    line = ngx_http_geostream_stream_id(sub, &len);
    if (line == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_geostream_sub_append_owned(sub, line, len, replayed)
        != NGX_OK)
    {
        ngx_free(line);
        return NGX_ERROR;
    }

    return ngx_http_geostream_sub_append(sub, ev, ev->data.data + skip,
                                         ev->data.len - skip, replayed);
}


/* "id: a=0:12,1:7;b=0:3\n": where each placed topic of the stream is */
static u_char *
ngx_http_geostream_stream_id(ngx_http_geostream_sub_t *sub, size_t *len)
{
    u_char                       *line, *p;
    size_t                        n;
    ngx_uint_t                    i, nparts;
    ngx_http_geostream_member_t  *mi;
    ngx_geostream_stream_part_t   parts[NGX_HTTP_GEOSTREAM_STREAM_TOPICS];

    nparts = 0;

    for (i = 0; i < sub->nmembers; i++) {
        mi = &sub->members[i];

        if (!mi->placed) {
            continue;
        }

        ngx_http_geostream_member_where(mi, &parts[nparts++]);
    }

    n = sizeof("id: ") - 1 + ngx_geostream_stream_id_len(parts, nparts) + 1;

    line = ngx_alloc(n, ngx_cycle->log);
    if (line == NULL) {
        return NULL;
    }

    p = ngx_cpymem(line, "id: ", sizeof("id: ") - 1);
    p = ngx_geostream_stream_id_write(p, parts, nparts);
    *p++ = '\n';

    *len = p - line;

    return line;
}


/*
 * A member's part of the stream's ids: the cursor of the last event it
 * sent (or where its topic stood when it joined), or else the cursor it
 * resumed from, as the client gave it.
 */
static void
ngx_http_geostream_member_where(ngx_http_geostream_member_t *m,
    ngx_geostream_stream_part_t *part)
{
    part->topic = m->topic->name.data;
    part->topic_len = m->topic->name.len;

    if (m->position) {
        part->cursor = &m->position->cursor;
        part->text = NULL;
        part->text_len = 0;

    } else {
        part->cursor = NULL;
        part->text = m->start.resumed.data;
        part->text_len = m->start.resumed.len;
    }
}


/*
 * A worker that stops fast (SIGTERM) exits with its streams open: the
 * kernel closes their sockets, and would keep what the stalled ones hold
 * as it does for any close; those are reset instead.
 */
void
ngx_http_geostream_topics_exit(ngx_http_geostream_topics_t *topics)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q, *q2, *queue;
    ngx_http_geostream_topic_t   *topic;
    ngx_http_geostream_member_t  *m;

    if (topics->queue.next == NULL) {
        return;
    }

    for (q = ngx_queue_head(&topics->queue);
         q != ngx_queue_sentinel(&topics->queue);
         q = ngx_queue_next(q))
    {
        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        for (i = 0; i < 3; i++) {
            queue = (i == 0) ? &topic->subscribers
                  : (i == 1) ? &topic->waiting : &topic->replaying;

            for (q2 = ngx_queue_head(queue);
                 q2 != ngx_queue_sentinel(queue);
                 q2 = ngx_queue_next(q2))
            {
                m = ngx_queue_data(q2, ngx_http_geostream_member_t, queue);
                ngx_http_geostream_sub_shutdown(m->sub);
            }
        }
    }
}


/*
 * At worker exit, once the reader thread has stopped: the worker's
 * topics, with the events their histories hold.  A stream still open
 * (nginx without a master process exits without closing its connections)
 * keeps the references it holds to the events it was sending.
 */
void
ngx_http_geostream_topics_free(ngx_http_geostream_topics_t *topics)
{
    size_t                                i;
    ngx_queue_t                          *q;
    ngx_http_geostream_topic_t           *topic;
    const ngx_geostream_history_entry_t  *e;

    if (topics->queue.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&topics->queue)) {
        q = ngx_queue_head(&topics->queue);
        ngx_queue_remove(q);

        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        for (i = 0; i < topic->history.count; i++) {
            e = ngx_geostream_history_at(&topic->history, i);
            ngx_geostream_event_release(e->data);
        }

        ngx_geostream_history_free(&topic->history);

        if (topic->last) {
            ngx_geostream_event_release(topic->last);
        }

        ngx_rbtree_delete(&topics->tree, &topic->sn.node);
        ngx_free(topic);
    }

    /* a topic looked up from now on starts a new list */
    topics->queue.next = NULL;
}


ngx_int_t
ngx_http_geostream_topics_status(ngx_http_geostream_topics_t *topics,
    ngx_array_t *out)
{
    ngx_queue_t                        *q;
    ngx_http_geostream_topic_t         *topic;
    ngx_http_geostream_topic_status_t  *st;

    if (topics->queue.next == NULL) {
        return NGX_OK;
    }

    for (q = ngx_queue_head(&topics->queue);
         q != ngx_queue_sentinel(&topics->queue);
         q = ngx_queue_next(q))
    {
        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        st = ngx_array_push(out);
        if (st == NULL) {
            return NGX_ERROR;
        }

        st->name = topic->name;
        st->ready = topic->ready;
        st->subscribers = topic->nsubscribers;
        st->events = topic->events;
        st->history = topic->history.count;
        st->history_bytes = topic->history.bytes;
    }

    return NGX_OK;
}
