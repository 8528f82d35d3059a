/*
 * rate-load: a small open-loop, constant-rate HTTP/1.1 load generator
 * for bench/producer/run (Debian has no wrk2).
 *
 * Requests are scheduled on one global timetable, one every 1/RATE
 * seconds, and handed to whichever keep-alive connection is idle.  A
 * request that finds no idle connection waits in line; its latency is
 * always measured from its intended send time, not from when it was
 * actually written, so a slow answer cannot hide the requests it delayed
 * (no coordinated omission).  The timetable is driven by a timerfd, so the
 * generator itself adds microseconds, not milliseconds, of lateness.
 *
 *   rate-load --port N --path /producer-wait/bench --rate R
 *                  [--host 127.0.0.1] [--duration S] [--connections C]
 *
 * Each body is a position with one of 1000 entity names, so that keys
 * spread over the partitions; 4096 requests are prepared before the run
 * and sent in turn, as wrk's script does.  Prints
 * key=value lines: scheduled, requests (answered), duration_s, rps, p50_ms,
 * p90_ms, p99_ms, p999_ms, max_ms, non2xx, sock_errors.  Exits 1 on any
 * non-2xx answer, connection error or unanswered request.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>


#define MAX_CONNECTIONS  1024
#define REQ_SIZE         1024
#define RESP_SIZE        8192
#define TICK_MIN_NS      50000


typedef struct {
    int        fd;
    int        busy;
    int        want_write;       /* EPOLLOUT is armed */
    uint64_t   intended;         /* ns, of the request in flight */
    char       req[REQ_SIZE];
    size_t     req_len, req_sent;
    char       resp[RESP_SIZE];
    size_t     resp_len;
} conn_t;


static const char  *host = "127.0.0.1";
static const char  *path;
static int          port;
static double       rate;
static double       duration = 20;
static int          nconns = 64;

static conn_t       conns[MAX_CONNECTIONS];
static int          epfd;
static uint64_t     counter;

static uint64_t    *latencies;   /* ns */
static size_t       nlat, lat_cap;
static uint64_t     non2xx, errors;


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}


static void
die(const char *what)
{
    perror(what);
    exit(2);
}


static void
conn_open(conn_t *c)
{
    int                  one = 1;
    struct epoll_event   ev;
    struct sockaddr_in   sin;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd == -1) {
        die("socket");
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);

    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "rate-load: bad host %s\n", host);
        exit(2);
    }

    /* blocking connect on loopback, then non-blocking I/O */
    if (connect(c->fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        die("connect");
    }

    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) == -1) {
        die("fcntl");
    }

    c->busy = 0;
    c->want_write = 0;
    c->resp_len = 0;

    ev.events = EPOLLIN;
    ev.data.ptr = c;

    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
        die("epoll_ctl");
    }
}


static void
conn_reopen(conn_t *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_open(c);
}


/* one epoll_ctl() per change, not per request */
static void
conn_want_write(conn_t *c, int on)
{
    struct epoll_event  ev;

    if (c->want_write == on) {
        return;
    }

    c->want_write = on;
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}


static void
conn_flush(conn_t *c)
{
    ssize_t  n;

    while (c->req_sent < c->req_len) {
        n = write(c->fd, c->req + c->req_sent, c->req_len - c->req_sent);

        if (n > 0) {
            c->req_sent += n;
            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            conn_want_write(c, 1);
            return;
        }

        errors++;
        c->busy = 0;
        conn_reopen(c);
        return;
    }

    conn_want_write(c, 0);
}


/*
 * Requests are prepared before the run, as wrk's script does, so that
 * formatting costs the generator nothing per request.
 */
#define NREQUESTS  4096

static char    *requests[NREQUESTS];
static size_t   request_lens[NREQUESTS];


static void
requests_prepare(void)
{
    int       i, blen, n;
    char      body[256], req[REQ_SIZE];
    double    lat, lon;

    for (i = 0; i < NREQUESTS; i++) {
        lat = 52.5 + (double) (i % 997) / 10000.0;
        lon = 13.4 + (double) (i % 991) / 10000.0;

        blen = snprintf(body, sizeof(body),
                        "{\"name\":\"bus-%u\",\"message_id\":\"%d\","
                        "\"lat\":%.4f,\"lon\":%.4f,\"speed\":11.2,"
                        "\"heading\":87}",
                        (unsigned) (i % 1000), i, lat, lon);

        n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %d\r\n"
                     "\r\n%s", path, host, port, blen, body);

        requests[i] = strdup(req);
        request_lens[i] = n;

        if (requests[i] == NULL) {
            die("strdup");
        }
    }
}


static void
conn_send(conn_t *c, uint64_t intended)
{
    uint64_t  id = counter++;

    memcpy(c->req, requests[id % NREQUESTS], request_lens[id % NREQUESTS]);
    c->req_len = request_lens[id % NREQUESTS];
    c->req_sent = 0;
    c->resp_len = 0;
    c->busy = 1;
    c->intended = intended;

    conn_flush(c);
}


static void
record(uint64_t ns)
{
    if (nlat == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 65536;
        latencies = realloc(latencies, lat_cap * sizeof(uint64_t));
        if (latencies == NULL) {
            die("realloc");
        }
    }

    latencies[nlat++] = ns;
}


/*
 * 1: a whole response was read and the connection is idle again.  nginx
 * closes a keep-alive connection after keepalive_requests answers: the
 * last answer is taken before the connection is opened anew.
 */
static int
conn_read(conn_t *c)
{
    int      status, closed, done;
    char    *end, *cl;
    size_t   head, clen;
    ssize_t  n;

    closed = 0;
    done = 0;

    for ( ;; ) {
        if (c->resp_len == sizeof(c->resp) - 1) {
            closed = 1;
            break;
        }

        n = read(c->fd, c->resp + c->resp_len,
                 sizeof(c->resp) - 1 - c->resp_len);

        if (n > 0) {
            c->resp_len += n;
            c->resp[c->resp_len] = '\0';

            /* a short read took all there was (epoll is level-triggered) */
            if ((size_t) n < sizeof(c->resp) - 1 - (c->resp_len - n)) {
                break;
            }

            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            break;
        }

        closed = 1;     /* EOF or an error */
        break;
    }

    if (c->busy) {
        end = strstr(c->resp, "\r\n\r\n");

        if (end != NULL) {
            head = end + 4 - c->resp;
            clen = 0;

            cl = strcasestr(c->resp, "\r\nContent-Length:");
            if (cl != NULL && cl < end) {
                clen = strtoul(cl + 17, NULL, 10);

            } else if (strcasestr(c->resp, "\r\nTransfer-Encoding:")
                       != NULL)
            {
                fprintf(stderr, "rate-load: chunked answers are not "
                        "supported\n");
                exit(2);
            }

            if (c->resp_len >= head + clen) {
                record(now_ns() - c->intended);

                status = (c->resp_len > 12) ? atoi(c->resp + 9) : 0;

                if (status < 200 || status > 299) {
                    if (non2xx++ < 3) {
                        fprintf(stderr, "rate-load: %.*s\n",
                                (int) (c->resp_len < 300 ? c->resp_len
                                                         : 300),
                                c->resp);
                    }
                }

                /* the last answer on this connection: do not reuse it */
                if (strcasestr(c->resp, "\r\nConnection: close") != NULL) {
                    closed = 1;
                }

                c->busy = 0;
                c->resp_len = 0;
                done = 1;
            }
        }
    }

    if (closed) {
        if (c->busy) {
            /* the request in flight is lost */
            errors++;
            c->busy = 0;
        }

        conn_reopen(c);
    }

    return done;
}


static int
cmp_u64(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return (x > y) - (x < y);
}


static double
pct(double p)
{
    size_t  i;

    if (nlat == 0) {
        return 0;
    }

    i = (size_t) (p / 100.0 * (double) nlat);
    if (i >= nlat) {
        i = nlat - 1;
    }

    return latencies[i] / 1e6;
}


int
main(int argc, char **argv)
{
    int                  i, n, tfd, timer_armed;
    conn_t              *c;
    uint64_t             start, end, interval, tick, next, now, *backlog;
    uint64_t             total;
    uint64_t             scheduled;
    size_t               bl_head, bl_tail, bl_cap;
    struct itimerspec    its;
    struct epoll_event   ev, evs[256];

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            goto usage;
        }

        if (strcmp(argv[i], "--host") == 0) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--path") == 0) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--rate") == 0) {
            rate = atof(argv[++i]);
        } else if (strcmp(argv[i], "--duration") == 0) {
            duration = atof(argv[++i]);
        } else if (strcmp(argv[i], "--connections") == 0) {
            nconns = atoi(argv[++i]);
        } else {
            goto usage;
        }
    }

    if (port <= 0 || path == NULL || rate <= 0 || duration <= 0
        || nconns < 1 || nconns > MAX_CONNECTIONS)
    {
        goto usage;
    }

    epfd = epoll_create1(0);
    if (epfd == -1) {
        die("epoll_create1");
    }

    for (i = 0; i < nconns; i++) {
        conn_open(&conns[i]);
    }

    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd == -1) {
        die("timerfd_create");
    }

    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);

    interval = (uint64_t) (1e9 / rate);
    if (interval == 0) {
        interval = 1;
    }

    /* intended send times not yet handed to a connection */
    bl_cap = (size_t) (rate * duration) + 16;
    backlog = malloc(bl_cap * sizeof(uint64_t));
    if (backlog == NULL) {
        die("malloc");
    }

    bl_head = bl_tail = 0;
    scheduled = 0;

    requests_prepare();

    start = now_ns() + 10000000;    /* 10 ms from now */
    end = start + (uint64_t) (duration * 1e9);
    next = start;

    /*
     * Exactly rate x duration requests, each due at start + i / rate: a
     * fixed interval rounded to the nanosecond would schedule a few more
     * than that, and more than the line has room for.
     */
    total = (uint64_t) (rate * duration);

    /*
     * One periodic timer for the whole run: each tick hands out every
     * request due by then.  A tick is the interval between requests, but
     * no shorter than TICK_MIN_NS, so that the generator does not wake
     * more often than that; the wait until the tick counts in the
     * latency, which is measured from each request's own due time.
     */
    tick = interval > TICK_MIN_NS ? interval : TICK_MIN_NS;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = start / 1000000000u;
    its.it_value.tv_nsec = start % 1000000000u;
    its.it_interval.tv_sec = tick / 1000000000u;
    its.it_interval.tv_nsec = tick % 1000000000u;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    timer_armed = 1;

    for ( ;; ) {
        now = now_ns();

        /* everything due by now joins the line */
        while (scheduled < total && next <= now) {
            backlog[bl_tail++] = next;
            scheduled++;
            next = start + (uint64_t) ((double) scheduled * 1e9 / rate);
        }

        /* the line goes to idle connections */
        for (i = 0; i < nconns && bl_head < bl_tail; i++) {
            if (!conns[i].busy) {
                conn_send(&conns[i], backlog[bl_head++]);
            }
        }

        if (scheduled == total && bl_head == bl_tail) {
            for (i = 0; i < nconns; i++) {
                if (conns[i].busy) {
                    break;
                }
            }

            if (i == nconns) {
                break;
            }
        }

        /*
         * 10 s after the end, what is not answered is an error, whether
         * it is in flight or still waits for a connection
         */
        if (scheduled == total && now > end + 10000000000ull) {
            for (i = 0; i < nconns; i++) {
                errors += conns[i].busy;
            }

            errors += bl_tail - bl_head;
            fprintf(stderr, "rate-load: %llu requests unanswered 10 s after "
                    "the end\n", (unsigned long long) errors);
            break;
        }

        if (scheduled == total && timer_armed) {
            memset(&its, 0, sizeof(its));
            timerfd_settime(tfd, 0, &its, NULL);
            timer_armed = 0;
        }

        n = epoll_wait(epfd, evs, 256, scheduled < total ? -1 : 100);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            if (c == NULL) {
                uint64_t  expirations;

                (void) read(tfd, &expirations, sizeof(expirations));
                continue;
            }

            if (evs[i].events & EPOLLOUT) {
                conn_flush(c);
            }

            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                (void) conn_read(c);
            }
        }
    }

    qsort(latencies, nlat, sizeof(uint64_t), cmp_u64);

    printf("scheduled=%llu\n", (unsigned long long) scheduled);
    printf("requests=%zu\n", nlat);
    printf("duration_s=%.3f\n", duration);
    printf("rps=%.1f\n", nlat / duration);
    printf("p50_ms=%.3f\n", pct(50));
    printf("p90_ms=%.3f\n", pct(90));
    printf("p99_ms=%.3f\n", pct(99));
    printf("p999_ms=%.3f\n", pct(99.9));
    printf("max_ms=%.3f\n", nlat ? latencies[nlat - 1] / 1e6 : 0.0);
    printf("non2xx=%llu\n", (unsigned long long) non2xx);
    printf("sock_errors=%llu\n", (unsigned long long) errors);

    return (non2xx || errors || nlat != scheduled) ? 1 : 0;

usage:

    fprintf(stderr, "usage: rate-load --port N --path PATH --rate R "
            "[--host H] [--duration S] [--connections C]\n");
    return 2;
}
