/*
 * publish: POSTs positions at a constant rate over keep-alive connections,
 * each carrying the moment it was sent, for sse-load to measure the
 * end-to-end latency.
 *
 *   publish --port PORT [--host 127.0.0.1] [--path /producer/bench]
 *           [--rate MSGS_PER_S] [--duration S] [-c CONNECTIONS]
 *           [--names K] [--label NAME]
 *
 * Body (Content-Type: application/json), the same for geostream and nchan:
 *   {"name":"veh-7","lat":52.51234,"lon":13.40321,"seq":123,
 *    "sent_us":1732545741123456}
 * sent_us is CLOCK_REALTIME in microseconds, taken just before the write.
 *
 * Open loop: message i is due at start + i / rate.  Each connection has at
 * most one request outstanding; a due message waits for a free connection
 * (counted as "late" and reported with the worst lag), so the rate stays
 * honest when the server is slow.  Prints a line on stdout:
 *   PUBRESULT key=value ...
 */

#define _GNU_SOURCE

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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

#include "common.h"


#define MAX_CONNS   256
#define RBUF        16384


typedef struct {
    int       fd;
    int       busy;             /* a request is outstanding */
    int       connecting;
    char      rbuf[RBUF];
    size_t    rlen;
} pconn_t;


static const char  *opt_host = "127.0.0.1";
static int          opt_port;
static const char  *opt_path = "/producer/bench";
static double       opt_rate = 100;
static double       opt_duration = 20;
static int          opt_conns = 8;
static int          opt_names = 100;
static const char  *opt_label = "pub";

static pconn_t      pc[MAX_CONNS];
static int          ep;

static struct {
    uint64_t   sent;
    uint64_t   ok;
    uint64_t   non2xx;
    uint64_t   errors;
    uint64_t   late;
    uint64_t   reconnects;
    int        last_bad;
    double     max_lag;
} st;


static void
pc_open(int i)
{
    int                 one = 1;
    struct sockaddr_in  sa;
    struct epoll_event  ee;

    pc[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pc[i].fd == -1) {
        die("socket");
    }

    (void) setsockopt(pc[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) opt_port);

    if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1) {
        fprintf(stderr, "publish: --host must be an IPv4 address\n");
        exit(2);
    }

    if (connect(pc[i].fd, (struct sockaddr *) &sa, sizeof(sa)) == -1
        && errno != EINPROGRESS)
    {
        die("connect");
    }

    pc[i].connecting = 1;
    pc[i].busy = 0;
    pc[i].rlen = 0;

    ee.events = EPOLLOUT | EPOLLIN;
    ee.data.u32 = (uint32_t) i;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, pc[i].fd, &ee) == -1) {
        die("epoll_ctl");
    }
}


static void
pc_reopen(int i)
{
    if (pc[i].busy) {
        st.errors++;
    }

    epoll_ctl(ep, EPOLL_CTL_DEL, pc[i].fd, NULL);
    close(pc[i].fd);
    st.reconnects++;
    pc_open(i);
}


static int
pc_send(int i, uint64_t seq)
{
    int      len, blen, name;
    char     req[1024], body[256];
    double   lat, lon;
    ssize_t  n;

    name = (int) (seq % (uint64_t) opt_names);

    /* a slow walk around Berlin, one track a name */
    lat = 52.52 + 0.01 * name / opt_names + 1e-5 * (double) (seq % 1000);
    lon = 13.40 + 0.01 * name / opt_names + 1e-5 * (double) (seq % 997);

    blen = snprintf(body, sizeof(body),
                    "{\"name\":\"veh-%d\",\"lat\":%.6f,\"lon\":%.6f,"
                    "\"seq\":%llu,\"sent_us\":%lld}",
                    name, lat, lon, (unsigned long long) seq,
                    (long long) real_us());

    len = snprintf(req, sizeof(req),
                   "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s",
                   opt_path, opt_host, opt_port, blen, body);

    n = write(pc[i].fd, req, (size_t) len);

    if (n != len) {
        st.errors++;
        pc_reopen(i);
        return -1;
    }

    pc[i].busy = 1;
    st.sent++;

    return 0;
}


/* one whole answer in rbuf? its length, 0 if not yet, -1 if broken */
static ssize_t
answer_len(pconn_t *c, int *status)
{
    char    *end, *h, *cl, *body;
    size_t   head, blen;

    c->rbuf[c->rlen] = '\0';

    end = strstr(c->rbuf, "\r\n\r\n");
    if (end == NULL) {
        return c->rlen >= RBUF - 1 ? -1 : 0;
    }

    if (sscanf(c->rbuf, "HTTP/1.%*d %d", status) != 1) {
        return -1;
    }

    head = (size_t) (end + 4 - c->rbuf);
    body = end + 4;

    *end = '\0';
    cl = strcasestr(c->rbuf, "\r\ncontent-length:");
    h = strcasestr(c->rbuf, "\r\ntransfer-encoding:");
    *end = '\r';

    if (cl) {
        blen = (size_t) strtoul(cl + 17, NULL, 10);
        return (head + blen <= c->rlen) ? (ssize_t) (head + blen) : 0;
    }

    if (h) {
        /* chunked: the answer ends with the last, empty chunk */
        h = strstr(body, "0\r\n\r\n");
        return h ? (ssize_t) (h + 5 - c->rbuf) : 0;
    }

    return (ssize_t) head;      /* 204, 304 and the like */
}


static void
pc_read(int i)
{
    int       status = 0;
    ssize_t   n, len;
    pconn_t  *c = &pc[i];

    n = read(c->fd, c->rbuf + c->rlen, RBUF - 1 - c->rlen);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }

    if (n <= 0) {
        pc_reopen(i);
        return;
    }

    c->rlen += (size_t) n;

    for ( ;; ) {
        len = answer_len(c, &status);

        if (len == 0) {
            return;
        }

        if (len < 0) {
            st.errors++;
            pc_reopen(i);
            return;
        }

        if (status >= 200 && status < 300) {
            st.ok++;

        } else {
            st.non2xx++;
            st.last_bad = status;
        }

        c->busy = 0;
        memmove(c->rbuf, c->rbuf + len, c->rlen - (size_t) len);
        c->rlen -= (size_t) len;

        if (c->rlen == 0) {
            return;
        }
    }
}


static void
usage(void)
{
    fprintf(stderr, "usage: publish --port PORT [--host IP] [--path PATH]\n"
            "               [--rate R] [--duration S] [-c CONNS]"
            " [--names K] [--label L]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                 i, n, tfd, free_i;
    uint64_t            due, exp;
    double              t0, t, end, lag, interval, send_s;
    struct epoll_event  evs[MAX_CONNS + 1], ee;
    struct itimerspec   its;

    for (i = 1; i < argc; i++) {
        const char  *a = argv[i], *v = (i + 1 < argc) ? argv[i + 1] : NULL;

        if (v == NULL) {
            usage();
        }

        i++;

        if (strcmp(a, "--host") == 0) {
            opt_host = v;
        } else if (strcmp(a, "--port") == 0) {
            opt_port = atoi(v);
        } else if (strcmp(a, "--path") == 0) {
            opt_path = v;
        } else if (strcmp(a, "--rate") == 0) {
            opt_rate = atof(v);
        } else if (strcmp(a, "--duration") == 0) {
            opt_duration = atof(v);
        } else if (strcmp(a, "-c") == 0) {
            opt_conns = atoi(v);
        } else if (strcmp(a, "--names") == 0) {
            opt_names = atoi(v);
        } else if (strcmp(a, "--label") == 0) {
            opt_label = v;
        } else {
            usage();
        }
    }

    if (opt_port <= 0 || opt_rate <= 0 || opt_conns < 1
        || opt_conns > MAX_CONNS || opt_names < 1)
    {
        usage();
    }

    signal(SIGPIPE, SIG_IGN);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep == -1) {
        die("epoll_create1");
    }

    for (i = 0; i < opt_conns; i++) {
        pc_open(i);
    }

    /* a tick every message interval, at most every 0.5 ms */
    interval = 1.0 / opt_rate;
    if (interval < 0.0005) {
        interval = 0.0005;
    }

    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd == -1) {
        die("timerfd_create");
    }

    memset(&its, 0, sizeof(its));
    its.it_interval.tv_sec = (time_t) interval;
    its.it_interval.tv_nsec = (long) ((interval - (time_t) interval) * 1e9);
    its.it_value = its.it_interval;

    if (timerfd_settime(tfd, 0, &its, NULL) == -1) {
        die("timerfd_settime");
    }

    ee.events = EPOLLIN;
    ee.data.u32 = MAX_CONNS;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ee) == -1) {
        die("epoll_ctl");
    }

    t0 = mono();
    end = t0 + opt_duration;

    for ( ;; ) {
        n = epoll_wait(ep, evs, MAX_CONNS + 1, 100);

        if (n == -1 && errno != EINTR) {
            die("epoll_wait");
        }

        for (i = 0; i < n; i++) {
            int  k = (int) evs[i].data.u32;

            if (k == MAX_CONNS) {
                (void) read(tfd, &exp, sizeof(exp));
                continue;
            }

            if (pc[k].connecting && (evs[i].events & EPOLLOUT)) {
                pc[k].connecting = 0;
                ee.events = EPOLLIN;
                ee.data.u32 = (uint32_t) k;
                epoll_ctl(ep, EPOLL_CTL_MOD, pc[k].fd, &ee);
            }

            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                pc_read(k);
            }
        }

        t = mono();

        if (t >= end) {
            break;
        }

        /* what is due by now, on free connections */
        due = (uint64_t) ((t - t0) * opt_rate) + 1;
        free_i = 0;

        while (st.sent < due) {
            for ( /* void */ ; free_i < opt_conns; free_i++) {
                if (!pc[free_i].busy && !pc[free_i].connecting) {
                    break;
                }
            }

            if (free_i == opt_conns) {
                break;
            }

            lag = t - (t0 + (double) st.sent / opt_rate);
            if (lag > st.max_lag) {
                st.max_lag = lag;
            }

            if (lag > 0.005) {
                st.late++;
            }

            (void) pc_send(free_i, st.sent);
        }
    }

    send_s = mono() - t0;

    /* the last answers, bounded */
    end = mono() + 5;

    for ( ;; ) {
        int  busy = 0;

        for (i = 0; i < opt_conns; i++) {
            busy += pc[i].busy;
        }

        if (busy == 0 || mono() >= end) {
            break;
        }

        n = epoll_wait(ep, evs, MAX_CONNS + 1, 50);

        for (i = 0; i < n; i++) {
            int  k = (int) evs[i].data.u32;

            if (k == MAX_CONNS) {
                (void) read(tfd, &exp, sizeof(exp));

            } else {
                pc_read(k);
            }
        }
    }

    t = send_s;

    fprintf(stderr, "publish[%s]: %llu sent in %.1f s (%.1f/s), %llu 2xx,"
            " %llu non-2xx (last %d), %llu errors, %llu later than 5 ms"
            " (worst %.1f ms)\n", opt_label,
            (unsigned long long) st.sent, t, st.sent / t,
            (unsigned long long) st.ok, (unsigned long long) st.non2xx,
            st.last_bad, (unsigned long long) st.errors,
            (unsigned long long) st.late, st.max_lag * 1e3);

    printf("PUBRESULT label=%s sent=%llu secs=%.2f rate=%.1f ok=%llu"
           " non2xx=%llu errors=%llu late=%llu max_lag_ms=%.1f\n",
           opt_label, (unsigned long long) st.sent, t, st.sent / t,
           (unsigned long long) st.ok, (unsigned long long) st.non2xx,
           (unsigned long long) st.errors, (unsigned long long) st.late,
           st.max_lag * 1e3);

    return (st.non2xx || st.errors) ? 1 : 0;
}
