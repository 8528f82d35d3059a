/*
 * geostream: nginx as a live geodata gateway for Apache Kafka.
 *
 * The module: directives, configuration, worker start and exit.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_geostream_message.h"
#include "ngx_http_geostream_consumer.h"
#include "ngx_http_geostream_producer.h"
#include "ngx_http_geostream_worker.h"
#include "ngx_http_geostream_error_filter.h"
#include "ngx_http_geostream_stats.h"
#include "ngx_http_geostream_status.h"


#define NGX_HTTP_GEOSTREAM_HEARTBEAT     15000   /* ms */
#define NGX_HTTP_GEOSTREAM_BACKLOG       (1024 * 1024)
#define NGX_HTTP_GEOSTREAM_FLUSH         5000    /* ms */
/*
 * how long all brokers may be down before producer locations refuse new
 * messages (503): long enough to ride out a broker's restart, short
 * against message.timeout.ms, after which what was accepted is lost
 */
#define NGX_HTTP_GEOSTREAM_DOWN_GRACE    2000    /* ms */
#define NGX_HTTP_GEOSTREAM_HISTORY       10000   /* events per topic */
#define NGX_HTTP_GEOSTREAM_HISTORY_BYTES (64 * 1024 * 1024)
#define NGX_HTTP_GEOSTREAM_BATCH_RATE    1000    /* messages/s a worker */




static void *ngx_http_geostream_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_geostream_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_geostream_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_geostream_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_geostream_kafka_option(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_geostream_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_geostream_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_geostream_history(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_geostream_topics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_geostream_init_process(ngx_cycle_t *cycle);
static void ngx_http_geostream_exit_process(ngx_cycle_t *cycle);


/* messages a second, per worker; the router counts them in 32 bits */
static ngx_conf_num_bounds_t  ngx_http_geostream_batch_rate_bounds = {
    ngx_conf_check_num_bounds, 0, 1000000000
};


static ngx_command_t  ngx_http_geostream_commands[] = {

    { ngx_string("geostream_kafka_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.brokers),
      NULL },

    { ngx_string("geostream_kafka_option"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_geostream_kafka_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.options),
      NULL },

    { ngx_string("geostream_kafka_producer_option"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_geostream_kafka_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.producer_options),
      NULL },

    { ngx_string("geostream_kafka_consumer_option"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_geostream_kafka_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.consumer_options),
      NULL },

    { ngx_string("geostream_kafka_flush_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.flush_timeout),
      NULL },

    { ngx_string("geostream_kafka_down_grace"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.down_grace),
      NULL },

    { ngx_string("geostream_kafka_batch_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_geostream_main_conf_t, kafka.batch_rate),
      &ngx_http_geostream_batch_rate_bounds },

    { ngx_string("geostream_history"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_geostream_history,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("geostream_produce"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_geostream_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, produce),
      NULL },

    { ngx_string("geostream_produce_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, key),
      NULL },

    { ngx_string("geostream_produce_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, wait),
      NULL },

    { ngx_string("geostream_topics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_geostream_topics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("geostream_consume"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_geostream_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, consume),
      NULL },

    { ngx_string("geostream_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_geostream_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("geostream_sse_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, heartbeat),
      NULL },

    { ngx_string("geostream_sse_detach"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, detach),
      NULL },

    { ngx_string("geostream_sse_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, lifetime),
      NULL },

    { ngx_string("geostream_backlog"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_geostream_loc_conf_t, backlog),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_geostream_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_geostream_error_filter_init,  /* postconfiguration */

    ngx_http_geostream_create_main_conf,   /* create main configuration */
    ngx_http_geostream_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_geostream_create_loc_conf,    /* create location configuration */
    ngx_http_geostream_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_geostream_module = {
    NGX_MODULE_V1,
    &ngx_http_geostream_module_ctx,        /* module context */
    ngx_http_geostream_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_geostream_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_geostream_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_geostream_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_geostream_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_geostream_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     gmcf->kafka.brokers = { 0, NULL };
     *     gmcf->kafka.options = NULL;
     *     gmcf->kafka.producer_options = NULL;
     *     gmcf->kafka.consumer_options = NULL;
     */

    gmcf->kafka.flush_timeout = NGX_CONF_UNSET_MSEC;
    gmcf->kafka.down_grace = NGX_CONF_UNSET_MSEC;
    gmcf->kafka.batch_rate = NGX_CONF_UNSET;
    gmcf->history = NGX_CONF_UNSET_UINT;
    gmcf->history_bytes = NGX_CONF_UNSET_SIZE;

    return gmcf;
}


static char *
ngx_http_geostream_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_geostream_main_conf_t  *gmcf = conf;

    ngx_conf_init_msec_value(gmcf->kafka.flush_timeout,
                             NGX_HTTP_GEOSTREAM_FLUSH);
    ngx_conf_init_msec_value(gmcf->kafka.down_grace,
                             NGX_HTTP_GEOSTREAM_DOWN_GRACE);
    ngx_conf_init_uint_value(gmcf->history, NGX_HTTP_GEOSTREAM_HISTORY);
    ngx_conf_init_size_value(gmcf->history_bytes,
                             NGX_HTTP_GEOSTREAM_HISTORY_BYTES);
    ngx_conf_init_value(gmcf->kafka.batch_rate,
                        NGX_HTTP_GEOSTREAM_BATCH_RATE);

    if (gmcf->kafka.brokers.len == 0) {
        return NGX_CONF_OK;
    }

    gmcf->stats_zone = ngx_http_geostream_stats_zone(cf);
    if (gmcf->stats_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return ngx_geostream_kafka_check_conf(cf, &gmcf->kafka);
}


static void *
ngx_http_geostream_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_geostream_loc_conf_t  *glcf;

    glcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_geostream_loc_conf_t));
    if (glcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     glcf->produce = NULL;
     *     glcf->consume = NULL;
     *     glcf->status = 0;
     */

    glcf->key = NGX_CONF_UNSET_PTR;
    glcf->wait = NGX_CONF_UNSET;
#if (NGX_PCRE)
    glcf->topics = NGX_CONF_UNSET_PTR;
#endif
    glcf->heartbeat = NGX_CONF_UNSET_MSEC;
    glcf->lifetime = NGX_CONF_UNSET_MSEC;
    glcf->detach = NGX_CONF_UNSET;
    glcf->backlog = NGX_CONF_UNSET_SIZE;

    return glcf;
}


static char *
ngx_http_geostream_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_geostream_loc_conf_t *prev = parent;
    ngx_http_geostream_loc_conf_t *conf = child;

    ngx_http_geostream_main_conf_t  *gmcf;

    ngx_conf_merge_ptr_value(conf->key, prev->key, NULL);
    ngx_conf_merge_value(conf->wait, prev->wait, 0);
#if (NGX_PCRE)
    ngx_conf_merge_ptr_value(conf->topics, prev->topics, NULL);
#endif
    ngx_conf_merge_msec_value(conf->heartbeat, prev->heartbeat,
                              NGX_HTTP_GEOSTREAM_HEARTBEAT);
    ngx_conf_merge_msec_value(conf->lifetime, prev->lifetime, 0);
    ngx_conf_merge_value(conf->detach, prev->detach, 1);
    ngx_conf_merge_size_value(conf->backlog, prev->backlog,
                              NGX_HTTP_GEOSTREAM_BACKLOG);

    if (conf->produce == NULL && conf->consume == NULL) {
        return NGX_CONF_OK;
    }

    gmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_geostream_module);

    if (gmcf->kafka.brokers.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" needs \"geostream_kafka_brokers\"",
                           conf->produce ? "geostream_produce"
                                         : "geostream_consume");
        return NGX_CONF_ERROR;
    }

    /* main conf is initialized before locations merge */
    if (conf->produce && (conf->wait || gmcf->kafka.batch_rate)) {
        gmcf->kafka.prompt_producer = 1;
    }

    if (conf->produce && conf->wait) {
        gmcf->kafka.waiting_location = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_geostream_kafka_option(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t     *value;
    ngx_array_t  **options;
    ngx_keyval_t  *kv;

    options = (ngx_array_t **) (p + cmd->offset);

    if (*options == NULL) {
        *options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (*options == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(*options);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    /* configuration tokens are NUL-terminated, as librdkafka wants them */
    value = cf->args->elts;
    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


/* geostream_produce and geostream_consume: a topic, variables allowed */
static char *
ngx_http_geostream_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                         *value;
    ngx_http_complex_value_t         **cv;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_geostream_loc_conf_t     *glcf;
    ngx_http_compile_complex_value_t   ccv;

    glcf = conf;
    cv = (ngx_http_complex_value_t **) (p + cmd->offset);

    if (glcf->produce || glcf->consume || glcf->status) {
        return "is duplicate: a location either produces, consumes or "
               "reports status";
    }

    *cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (*cv == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = *cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a constant topic is checked now rather than on every request */
    if ((*cv)->lengths == NULL
        && !ngx_geostream_topic_valid(value[1].data, value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid kafka topic name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (cv == &glcf->produce)
                    ? ngx_http_geostream_producer_handler
                    : ngx_http_geostream_consumer_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_geostream_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_geostream_loc_conf_t  *glcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->produce || glcf->consume || glcf->status) {
        return "is duplicate: a location either produces, consumes or "
               "reports status";
    }

    glcf->status = NGX_HTTP_GEOSTREAM_STATUS_JSON;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strcmp(value[1].data, "prometheus") == 0) {
            glcf->status = NGX_HTTP_GEOSTREAM_STATUS_PROMETHEUS;

        } else if (ngx_strcmp(value[1].data, "json") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\": use \"json\" or "
                               "\"prometheus\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_geostream_status_handler;

    return NGX_CONF_OK;
}


/*
 * geostream_history [EVENTS] [SIZE]: how many events of a topic, and how
 * many bytes of them, each worker keeps for streams that resume; a
 * number is a count of events, a size has a unit (k, m, g).
 */
static char *
ngx_http_geostream_history(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_geostream_main_conf_t  *gmcf = conf;

    u_char      last;
    ssize_t     size;
    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (gmcf->history != NGX_CONF_UNSET_UINT
        || gmcf->history_bytes != NGX_CONF_UNSET_SIZE)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        last = value[i].len ? value[i].data[value[i].len - 1] : '\0';

        if (last >= '0' && last <= '9') {
            n = ngx_atoi(value[i].data, value[i].len);

            if (n == NGX_ERROR || gmcf->history != NGX_CONF_UNSET_UINT) {
                goto invalid;
            }

            gmcf->history = (ngx_uint_t) n;
            continue;
        }

        size = ngx_parse_size(&value[i]);

        if (size <= 0 || gmcf->history_bytes != NGX_CONF_UNSET_SIZE) {
            goto invalid;
        }

        gmcf->history_bytes = (size_t) size;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\": give a number of events "
                       "and a size, such as \"10000 64m\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* geostream_topics REGEX: the topics a location may produce to or consume */
static char *
ngx_http_geostream_topics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
#if (NGX_PCRE)
    ngx_http_geostream_loc_conf_t  *glcf = conf;

    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t           *value;
    ngx_regex_compile_t  rc;

    if (glcf->topics != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    glcf->topics = rc.regex;

    return NGX_CONF_OK;

#else

    return "requires PCRE, and nginx was built without it";

#endif
}


static ngx_int_t
ngx_http_geostream_init_process(ngx_cycle_t *cycle)
{
    ngx_http_geostream_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_geostream_module);

    if (gmcf == NULL) {
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "geostream worker %P starts, kafka brokers \"%V\"",
                   ngx_pid, &gmcf->kafka.brokers);

    /*
     * A worker whose producer cannot start still serves everything else;
     * its produce requests answer 503.
     */
    (void) ngx_http_geostream_worker_init(cycle, gmcf,
                                        ngx_http_geostream_producer_delivered);

    return NGX_OK;
}


static void
ngx_http_geostream_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_geostream_worker_exit(cycle);
}
