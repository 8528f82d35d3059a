/*
 * The instance's counters.  Each worker counts in a slot of its own in a
 * shared memory zone, so that whichever worker answers the status
 * location can add up the whole nginx instance (as stub_status does).
 * A reload keeps the zone, so the instance's counters only grow while
 * nginx runs, as Prometheus expects of them.
 *
 * A slot belongs to a worker process (by pid) for as long as it lives:
 * a reload's new workers take free slots while the old ones finish in
 * theirs.  A starting worker retires the slots of workers that are gone,
 * their counters added to a slot for the retired, so that a worker's own
 * figures are its own, and a worker that crashed leaves no streams
 * counted as open.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_stats.h"


/* twice as many slots as nginx spawns processes: old and new workers */
#define NGX_HTTP_GEOSTREAM_STATS_SLOTS  (2 * NGX_MAX_PROCESSES)


/* a slot keeps to its own cache lines, so workers do not contend */
typedef union {
    struct {
        ngx_atomic_t            pid;      /* its worker's; 0: free */
        ngx_geostream_stats_t   stats;
    } s;
    u_char                      line[128];
} ngx_http_geostream_stats_slot_t;


typedef struct {
    ngx_http_geostream_stats_slot_t  retired;  /* workers that are gone */
    ngx_http_geostream_stats_slot_t  slots[NGX_HTTP_GEOSTREAM_STATS_SLOTS];
} ngx_http_geostream_stats_sh_t;


/* the counters are a row of ngx_atomic_t, whatever their names */
#define NGX_HTTP_GEOSTREAM_COUNTERS                                           \
    (sizeof(ngx_geostream_stats_t) / sizeof(ngx_atomic_t))


static ngx_int_t ngx_http_geostream_stats_init_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_geostream_stats_retire(ngx_http_geostream_stats_sh_t *sh,
    ngx_http_geostream_stats_slot_t *slot);


ngx_shm_zone_t *
ngx_http_geostream_stats_zone(ngx_conf_t *cf)
{
    size_t           size;
    ngx_str_t        name = ngx_string("geostream_stats");
    ngx_shm_zone_t  *zone;

    /* the slab allocator's own pages, then the slots */
    size = 8 * ngx_pagesize + sizeof(ngx_http_geostream_stats_sh_t);

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_geostream_module);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_http_geostream_stats_init_zone;

    return zone;
}


static ngx_int_t
ngx_http_geostream_stats_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                *shpool;
    ngx_http_geostream_stats_sh_t  *sh;

    if (data) {
        /* a reload: the counters go on */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, zone->shm.log, 0,
                       "geostream stats zone kept across the reload");
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_geostream_stats_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    zone->data = sh;

    return NGX_OK;
}


/*
 * The worker takes a free slot and counts in it from now on, after it has
 * retired the slots of workers that are gone.
 */
ngx_geostream_stats_t *
ngx_http_geostream_stats_attach(ngx_shm_zone_t *zone, ngx_log_t *log)
{
    ngx_pid_t                         pid;
    ngx_uint_t                        i;
    ngx_slab_pool_t                  *shpool;
    ngx_http_geostream_stats_sh_t    *sh;
    ngx_http_geostream_stats_slot_t  *slot, *mine;

    if (zone == NULL) {
        return NULL;
    }

    sh = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    mine = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_GEOSTREAM_STATS_SLOTS; i++) {
        slot = &sh->slots[i];
        pid = (ngx_pid_t) slot->s.pid;

        /* this pid's, before it is claimed: a gone worker's, pid reused */
        if (pid != 0
            && (pid == ngx_pid
                || (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH)))
        {
            ngx_http_geostream_stats_retire(sh, slot);
            pid = 0;
        }

        if (pid == 0 && mine == NULL) {
            mine = slot;
        }
    }

    if (mine) {
        mine->s.pid = (ngx_atomic_uint_t) ngx_pid;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (mine == NULL) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "geostream: no free slot for this worker's counters; "
                      "the status page will not count them");
        return NULL;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "geostream stats: worker %P counts in slot %ui",
                   ngx_pid, (ngx_uint_t) (mine - sh->slots));

    return &mine->s.stats;
}


/*
 * A slot whose worker is gone: its counters go to the retired ones, and
 * its streams, closed when the worker went, no longer count as open.
 */
static void
ngx_http_geostream_stats_retire(ngx_http_geostream_stats_sh_t *sh,
    ngx_http_geostream_stats_slot_t *slot)
{
    ngx_uint_t     f;
    ngx_atomic_t  *from, *to;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "geostream stats: the slot of worker %P is retired",
                   (ngx_pid_t) slot->s.pid);

    slot->s.stats.subscribers = 0;

    from = (ngx_atomic_t *) &slot->s.stats;
    to = (ngx_atomic_t *) &sh->retired.s.stats;

    for (f = 0; f < NGX_HTTP_GEOSTREAM_COUNTERS; f++) {
        to[f] += from[f];
        from[f] = 0;
    }

    slot->s.pid = 0;
}


/*
 * every slot's counters added up, the retired ones too: the whole
 * instance; without a zone, the worker's own ("mine")
 */
void
ngx_http_geostream_stats_total(ngx_shm_zone_t *zone,
    ngx_geostream_stats_t *mine, ngx_geostream_stats_t *total)
{
    ngx_uint_t                        i, f;
    ngx_atomic_t                     *from, *to;
    ngx_slab_pool_t                  *shpool;
    ngx_http_geostream_stats_sh_t    *sh;
    ngx_http_geostream_stats_slot_t  *slot;

    ngx_memzero(total, sizeof(ngx_geostream_stats_t));

    if (zone == NULL) {
        *total = *mine;
        return;
    }

    sh = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    to = (ngx_atomic_t *) total;

    /* not while a slot is retired: its counts would be seen twice */
    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i <= NGX_HTTP_GEOSTREAM_STATS_SLOTS; i++) {
        slot = (i == 0) ? &sh->retired : &sh->slots[i - 1];
        from = (ngx_atomic_t *) &slot->s.stats;

        for (f = 0; f < NGX_HTTP_GEOSTREAM_COUNTERS; f++) {
            to[f] += from[f];
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);
}
