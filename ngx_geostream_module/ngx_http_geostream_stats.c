/*
 * The instance's counters.  Each worker counts in its own slot of a
 * shared memory zone, so that whichever worker answers the status
 * location can add up the whole nginx instance (as stub_status does), and
 * a reload keeps the zone, so counters only grow while nginx runs, as
 * Prometheus expects of them.  A reload's new worker N takes the slot of
 * the old worker N, which may still be finishing: hence atomic updates.
 */

#include "ngx_http_geostream_module.h"


/* a slot for every worker nginx can run: 128 KiB in all */
#define NGX_HTTP_GEOSTREAM_STATS_SLOTS  NGX_MAX_PROCESSES


/* a slot keeps to its own cache lines, so workers do not contend */
typedef union {
    ngx_geostream_stats_t   stats;
    u_char                  line[128];
} ngx_http_geostream_stats_slot_t;


static ngx_int_t ngx_http_geostream_stats_init_zone(ngx_shm_zone_t *zone,
    void *data);


/* where a process counts before it is a worker with the zone, if ever */
static ngx_geostream_stats_t   ngx_http_geostream_stats_local;

ngx_geostream_stats_t         *ngx_geostream_stats =
                                   &ngx_http_geostream_stats_local;


ngx_shm_zone_t *
ngx_http_geostream_stats_zone(ngx_conf_t *cf)
{
    size_t           size;
    ngx_str_t        name = ngx_string("geostream_stats");
    ngx_shm_zone_t  *zone;

    /* the slab allocator's own pages, then the slots */
    size = 8 * ngx_pagesize
           + NGX_HTTP_GEOSTREAM_STATS_SLOTS
             * sizeof(ngx_http_geostream_stats_slot_t);

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
    ngx_slab_pool_t                  *shpool;
    ngx_http_geostream_stats_slot_t  *slots;

    if (data) {
        /* a reload: the counters go on */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    slots = ngx_slab_calloc(shpool, NGX_HTTP_GEOSTREAM_STATS_SLOTS
                                    * sizeof(ngx_http_geostream_stats_slot_t));
    if (slots == NULL) {
        return NGX_ERROR;
    }

    shpool->data = slots;
    zone->data = slots;

    return NGX_OK;
}


/* the worker counts in its slot from now on */
void
ngx_http_geostream_stats_attach(ngx_shm_zone_t *zone)
{
    ngx_http_geostream_stats_slot_t  *slots;

    slots = zone->data;

    /* nginx spawns fewer processes than that; the bound costs nothing */
    ngx_geostream_stats =
        &slots[ngx_worker % NGX_HTTP_GEOSTREAM_STATS_SLOTS].stats;
}


/* every slot's counters added up: the whole instance */
void
ngx_http_geostream_stats_total(ngx_shm_zone_t *zone,
    ngx_geostream_stats_t *total)
{
    ngx_uint_t                        i, f;
    ngx_atomic_t                     *from, *to;
    ngx_http_geostream_stats_slot_t  *slots;

    ngx_memzero(total, sizeof(ngx_geostream_stats_t));

    if (zone == NULL) {
        *total = *ngx_geostream_stats;
        return;
    }

    slots = zone->data;
    to = (ngx_atomic_t *) total;

    /* the counters are a row of ngx_atomic_t, whatever their names */
    for (i = 0; i < NGX_HTTP_GEOSTREAM_STATS_SLOTS; i++) {
        from = (ngx_atomic_t *) &slots[i].stats;

        for (f = 0; f < sizeof(ngx_geostream_stats_t) / sizeof(ngx_atomic_t);
             f++)
        {
            to[f] += from[f];
        }
    }
}
