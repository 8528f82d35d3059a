/*
 * sse-load: holds thousands of Server-Sent-Events streams from one process
 * (epoll, non-blocking sockets) and measures what arrives on them.
 *
 *   sse-load --port PORT [--host 127.0.0.1] [--path /consumer/bench]
 *            [-n CONNS] [--connect-rate PER_S] [--connect-timeout S]
 *            [--settle S] [--duration S] [--http10] [--src-addrs K]
 *            [--pids PID,PID] [--run 'SHELL COMMAND'] [--msg-rate R]
 *            [--label NAME] [--max-rss-mb MB]
 *
 * Phases:
 *   1. reads the memory (VmRSS, Pss) of the --pids (nginx workers) with
 *      none of its streams open;
 *   2. opens CONNS streams at --connect-rate per second (no SYN flood),
 *      sends GET PATH (HTTP/1.1, chunked decoding; or HTTP/1.0, raw) and
 *      waits for every "200" answer or --connect-timeout;
 *   3. reads the --pids' memory again, with CONNS idle streams;
 *   4. starts --run (the publisher), if given, through /bin/sh;
 *   5. waits --settle seconds, then measures for --duration seconds:
 *      events received (one per blank-line-terminated SSE event that has
 *      "data:"), and for each event whose data holds "sent_us": N
 *      (CLOCK_REALTIME microseconds at sending) the end-to-end latency, in
 *      a log-linear histogram (3 significant digits);
 *   6. the --pids' CPU time (utime + stime, all threads) over the window,
 *      their memory, and this process's own CPU time.
 * Once a second it reads the --pids' memory: past --max-rss-mb (their sum)
 * the run is cut short and the result says aborted=1.
 *
 * Prints a readable report on stderr and one line on stdout:
 *   RESULT key=value ...
 *
 * Only for loopback benchmarks: it trusts the server and never retries.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"


#define MAX_PIDS       16
#define HDR_MAX        4096
#define LINE_MAX_LEN   16384
#define READ_BUF       (256 * 1024)

/* histogram: values below 2048 us exactly, then 1024 sub-buckets a power */
#define H_SUB_BITS     10
#define H_SUB          (1 << H_SUB_BITS)
#define H_BUCKETS      (2 * H_SUB + 40 * H_SUB)


enum {
    C_FREE = 0,
    C_CONNECTING,
    C_HEADERS,
    C_STREAM,
    C_DONE
};

enum {
    K_SIZE = 0,
    K_EXT,
    K_DATA,
    K_DATA_END,
    K_END
};


typedef struct {
    int        fd;
    uint8_t    state;
    uint8_t    chunked;
    uint8_t    kstate;
    uint8_t    ev_data;       /* the current event has a data: line */
    uint8_t    ev_ts;         /* ... and a sent_us */
    uint8_t    line_over;     /* the current line was cut at LINE_MAX_LEN */
    uint64_t   chunk_left;
    int64_t    ev_sent_us;
    char      *hdr;           /* while reading the answer's head */
    uint32_t   hdr_len;
    char      *line;          /* a line split across reads */
    uint32_t   line_len;
    uint32_t   line_cap;
    uint64_t   events;
} conn_t;


typedef struct {
    uint64_t   counts[H_BUCKETS];
    uint64_t   n;
    int64_t    max;
    int64_t    min;
    double     sum;
} hist_t;


typedef struct {
    long       rss_kb;
    long       pss_kb;
    int        ok;
} mem_t;


static const char  *opt_host = "127.0.0.1";
static int          opt_port;
static const char  *opt_path = "/consumer/bench";
static int          opt_conns = 1000;
static double       opt_connect_rate = 2000;
static double       opt_connect_timeout = 60;
static double       opt_settle = 2;
static double       opt_duration = 15;
static int          opt_http10;
static int          opt_src_addrs = 1;
static pid_t        opt_pids[MAX_PIDS];
static int          opt_npids;
static pid_t        opt_aux[MAX_PIDS];
static int          opt_naux;
static const char  *opt_run;
static double       opt_msg_rate;
static const char  *opt_label = "run";
static long         opt_max_rss_kb;
static int          aborted;          /* the workers grew past the limit */
static long         peak_rss_kb;

static conn_t      *conns;
static int          ep;
static char         reqbuf[1024];
static int          reqlen;

static hist_t       hist;
static int          measuring;
static int64_t      now_us;           /* CLOCK_REALTIME, per read */

static struct {
    uint64_t   attempted;
    uint64_t   established;           /* 200 and a stream */
    uint64_t   failed;                /* connect or answer failed */
    uint64_t   fail_connect;
    uint64_t   fail_status;
    uint64_t   fail_closed;           /* closed before the answer's head */
    uint64_t   closed;                /* closed by the server while streaming */
    uint64_t   open;                  /* streams open now */
    uint64_t   events;                /* all events with data */
    uint64_t   window_events;
    uint64_t   window_no_ts;
    uint64_t   window_bytes;
    uint64_t   window_closed;
    int        last_status;
} st;


/* --- histogram ---------------------------------------------------------- */

static int
h_index(int64_t v)
{
    int       e;
    uint64_t  u;

    if (v < 0) {
        v = 0;
    }

    u = (uint64_t) v;

    if (u < 2 * H_SUB) {
        return (int) u;
    }

    e = 63 - __builtin_clzll(u) - H_SUB_BITS;     /* u >> e in [1024, 2048) */

    if (e > 40) {
        return H_BUCKETS - 1;
    }

    return (int) (2 * H_SUB + (e - 1) * H_SUB + ((u >> e) - H_SUB));
}


/* the highest value a bucket holds */
static int64_t
h_value(int i)
{
    int  e;

    if (i < 2 * H_SUB) {
        return i;
    }

    e = (i - 2 * H_SUB) / H_SUB + 1;

    return (((int64_t) ((i - 2 * H_SUB) % H_SUB + H_SUB)) << e)
           + ((int64_t) 1 << e) - 1;
}


static void
h_record(hist_t *h, int64_t v)
{
    if (v < 0) {
        v = 0;
    }

    h->counts[h_index(v)]++;
    h->n++;
    h->sum += (double) v;

    if (v > h->max) {
        h->max = v;
    }

    if (h->n == 1 || v < h->min) {
        h->min = v;
    }
}


static int64_t
h_percentile(const hist_t *h, double p)
{
    int       i;
    uint64_t  want, seen;

    if (h->n == 0) {
        return -1;
    }

    want = (uint64_t) (p / 100.0 * (double) h->n + 0.5);
    if (want < 1) {
        want = 1;
    }

    seen = 0;

    for (i = 0; i < H_BUCKETS; i++) {
        seen += h->counts[i];

        if (seen >= want) {
            return h_value(i) < h->max ? h_value(i) : h->max;
        }
    }

    return h->max;
}


/* --- /proc -------------------------------------------------------------- */

static mem_t
read_mem(pid_t pid)
{
    char   path[64], line[256];
    FILE  *f;
    mem_t  m = { 0, 0, 0 };

    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return m;
    }

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            m.rss_kb = strtol(line + 6, NULL, 10);
            m.ok = 1;
        }
    }

    fclose(f);

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return m;
    }

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Pss:", 4) == 0) {
            m.pss_kb = strtol(line + 4, NULL, 10);
        }
    }

    fclose(f);

    return m;
}


static mem_t
read_mem_all(void)
{
    int    i;
    mem_t  t = { 0, 0, 1 }, m;

    for (i = 0; i < opt_npids; i++) {
        m = read_mem(opt_pids[i]);
        if (!m.ok) {
            t.ok = 0;
        }
        t.rss_kb += m.rss_kb;
        t.pss_kb += m.pss_kb;
    }

    return t;
}


/* utime + stime in clock ticks, -1 if gone */
static long long
read_cpu(pid_t pid)
{
    char        path[64], buf[2048], *p;
    int         fd, i;
    ssize_t     n;
    long long   ut, stt;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        return -1;
    }

    buf[n] = '\0';

    /* the command may hold spaces: fields count from after its ")" */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }

    p++;

    /* field 3 (state) is the first after ")"; utime is 14, stime 15 */
    for (i = 3; i < 14 && p; i++) {
        p = strchr(p + 1, ' ');
    }

    if (p == NULL || sscanf(p, " %lld %lld", &ut, &stt) != 2) {
        return -1;
    }

    return ut + stt;
}


/* all CPUs' busy time (not idle, not iowait), in clock ticks */
static long long
read_busy(void)
{
    FILE       *f;
    long long   v[8] = { 0 };

    f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return -1;
    }

    if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
    {
        fclose(f);
        return -1;
    }

    fclose(f);

    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}


static double
cpu_sum(const pid_t *pids, int n, long long *before, int after, long tck)
{
    int        i;
    long long  c;
    double     sum = 0;

    for (i = 0; i < n; i++) {
        c = read_cpu(pids[i]);

        if (!after) {
            before[i] = c;

        } else if (c >= 0 && before[i] >= 0) {
            sum += (double) (c - before[i]) / (double) tck;
        }
    }

    return sum;
}


/* --- SSE ---------------------------------------------------------------- */

static int64_t
parse_sent_us(const char *s, size_t len, int *ok)
{
    char        num[40];
    size_t      i;
    const char *p, *end;

    static const char  key[] = "\"sent_us\":";

    *ok = 0;

    p = memmem(s, len, key, sizeof(key) - 1);
    if (p == NULL) {
        return 0;
    }

    p += sizeof(key) - 1;
    end = s + len;

    while (p < end && (*p == ' ' || *p == '"')) {
        p++;
    }

    for (i = 0; p < end && i < sizeof(num) - 1
                && (*p == '-' || *p == '+' || *p == '.' || *p == 'e'
                    || *p == 'E' || (*p >= '0' && *p <= '9'));
         i++, p++)
    {
        num[i] = *p;
    }

    if (i == 0) {
        return 0;
    }

    num[i] = '\0';
    *ok = 1;

    /* cJSON may print big integers as %1.17g: strtod reads all forms */
    return (int64_t) (strtod(num, NULL) + 0.5);
}


static void
sse_line(conn_t *c, const char *s, size_t len)
{
    int  ok;

    if (len && s[len - 1] == '\r') {
        len--;
    }

    if (len == 0) {
        if (c->ev_data) {
            c->events++;
            st.events++;

            if (measuring) {
                st.window_events++;

                if (c->ev_ts) {
                    h_record(&hist, now_us - c->ev_sent_us);

                } else {
                    st.window_no_ts++;
                }
            }
        }

        c->ev_data = 0;
        c->ev_ts = 0;
        return;
    }

    if (len >= 5 && memcmp(s, "data:", 5) == 0) {
        c->ev_data = 1;

        if (!c->ev_ts) {
            c->ev_sent_us = parse_sent_us(s + 5, len - 5, &ok);
            c->ev_ts = ok;
        }
    }

    /* comments (":"), id:, event:, retry: are not events */
}


static void
sse_feed(conn_t *c, const char *p, size_t n)
{
    size_t       take, want;
    const char  *nl;

    if (measuring) {
        st.window_bytes += n;
    }

    while (n) {
        nl = memchr(p, '\n', n);

        if (nl == NULL) {
            take = n;

        } else {
            take = (size_t) (nl - p);
        }

        if (nl && c->line_len == 0 && !c->line_over) {
            sse_line(c, p, take);

        } else {
            /* keep what fits of a line that continues in the next read */
            want = take;

            if (c->line_len + want > LINE_MAX_LEN) {
                want = LINE_MAX_LEN - c->line_len;
                c->line_over = 1;
            }

            if (want) {
                if (c->line_len + want > c->line_cap) {
                    c->line_cap = c->line_len + want < 256
                                  ? 256 : LINE_MAX_LEN;
                    c->line = realloc(c->line, c->line_cap);
                    if (c->line == NULL) {
                        die("realloc");
                    }
                }

                memcpy(c->line + c->line_len, p, want);
                c->line_len += want;
            }

            if (nl) {
                sse_line(c, c->line, c->line_len);
                c->line_len = 0;
                c->line_over = 0;
            }
        }

        if (nl == NULL) {
            return;
        }

        take++;
        p += take;
        n -= take;
    }
}


/* the body: chunked (HTTP/1.1) or raw (HTTP/1.0, or no chunking); 1 = end */
static int
body_feed(conn_t *c, const char *p, size_t n)
{
    size_t  take;
    char    ch;

    if (!c->chunked) {
        sse_feed(c, p, n);
        return 0;
    }

    while (n) {
        switch (c->kstate) {

        case K_SIZE:
            ch = *p++;
            n--;

            if (ch >= '0' && ch <= '9') {
                c->chunk_left = c->chunk_left * 16 + (ch - '0');

            } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
                c->chunk_left = c->chunk_left * 16 + ((ch | 0x20) - 'a' + 10);

            } else if (ch == ';') {
                c->kstate = K_EXT;

            } else if (ch == '\n') {
                c->kstate = c->chunk_left ? K_DATA : K_END;

                if (c->kstate == K_END) {
                    return 1;
                }
            }

            break;

        case K_EXT:
            ch = *p++;
            n--;

            if (ch == '\n') {
                c->kstate = c->chunk_left ? K_DATA : K_END;

                if (c->kstate == K_END) {
                    return 1;
                }
            }

            break;

        case K_DATA:
            take = n < c->chunk_left ? n : (size_t) c->chunk_left;
            sse_feed(c, p, take);
            p += take;
            n -= take;
            c->chunk_left -= take;

            if (c->chunk_left == 0) {
                c->kstate = K_DATA_END;
            }

            break;

        case K_DATA_END:
            ch = *p++;
            n--;

            if (ch == '\n') {
                c->kstate = K_SIZE;
                c->chunk_left = 0;
            }

            break;

        default:
            return 1;
        }
    }

    return 0;
}


/* --- connections -------------------------------------------------------- */

static void
conn_close(conn_t *c, int graceful)
{
    struct linger  lg = { 1, 0 };

    if (c->fd != -1) {
        /* reset: no TIME_WAIT left on the loopback port range */
        if (!graceful) {
            (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }

        close(c->fd);
    }

    if (c->state == C_STREAM) {
        st.open--;
    }

    free(c->hdr);
    free(c->line);
    c->hdr = NULL;
    c->line = NULL;
    c->line_len = 0;
    c->line_cap = 0;
    c->fd = -1;
    c->state = C_DONE;
}


static void
conn_fail(conn_t *c, uint64_t *why)
{
    st.failed++;
    (*why)++;
    conn_close(c, 0);
}


static void
conn_start(int i)
{
    int                 fd, one = 1;
    conn_t             *c = &conns[i];
    struct sockaddr_in  sa, src;
    struct epoll_event  ee;

    st.attempted++;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        c->fd = -1;
        c->state = C_CONNECTING;
        conn_fail(c, &st.fail_connect);
        return;
    }

    c->fd = fd;
    c->state = C_CONNECTING;

    if (opt_src_addrs > 1) {
        (void) setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                          sizeof(one));
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001 + (uint32_t) (i % opt_src_addrs));

        if (bind(fd, (struct sockaddr *) &src, sizeof(src)) == -1) {
            conn_fail(c, &st.fail_connect);
            return;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) opt_port);

    if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1) {
        fprintf(stderr, "sse-load: --host must be an IPv4 address\n");
        exit(2);
    }

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == -1
        && errno != EINPROGRESS)
    {
        conn_fail(c, &st.fail_connect);
        return;
    }

    ee.events = EPOLLOUT;
    ee.data.u32 = (uint32_t) i;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ee) == -1) {
        die("epoll_ctl");
    }
}


static void
conn_connected(conn_t *c, int i)
{
    int                 err = 0;
    socklen_t           len = sizeof(err);
    ssize_t             n;
    struct epoll_event  ee;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
        conn_fail(c, &st.fail_connect);
        return;
    }

    /* a small request always fits an empty socket buffer */
    n = write(c->fd, reqbuf, (size_t) reqlen);
    if (n != reqlen) {
        conn_fail(c, &st.fail_connect);
        return;
    }

    c->state = C_HEADERS;
    c->hdr = malloc(HDR_MAX);
    if (c->hdr == NULL) {
        die("malloc");
    }
    c->hdr_len = 0;

    ee.events = EPOLLIN | EPOLLRDHUP;
    ee.data.u32 = (uint32_t) i;

    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ee) == -1) {
        die("epoll_ctl");
    }
}


/* the answer's head; returns the bytes of body that followed it, or -1 */
static ssize_t
conn_head(conn_t *c, const char *p, size_t n, size_t *body_off)
{
    int    status;
    char  *end, *h, *line_end;
    size_t room, used;

    room = HDR_MAX - 1 - c->hdr_len;
    used = n < room ? n : room;

    memcpy(c->hdr + c->hdr_len, p, used);
    c->hdr_len += used;
    c->hdr[c->hdr_len] = '\0';

    end = strstr(c->hdr, "\r\n\r\n");

    if (end == NULL) {
        if (c->hdr_len >= HDR_MAX - 1) {
            return -1;
        }

        *body_off = n;
        return 0;
    }

    if (sscanf(c->hdr, "HTTP/1.%*d %d", &status) != 1) {
        return -1;
    }

    st.last_status = status;

    if (status != 200) {
        return -2;
    }

    /* the bytes of p after the head */
    *body_off = (size_t) ((end + 4 - c->hdr) - (c->hdr_len - used));

    c->chunked = 0;

    for (h = strstr(c->hdr, "\r\n"); h && h < end; h = line_end) {
        h += 2;
        line_end = strstr(h, "\r\n");

        if (strncasecmp(h, "transfer-encoding:", 18) == 0) {
            *line_end = '\0';

            if (strcasestr(h, "chunked")) {
                c->chunked = 1;
            }

            *line_end = '\r';
        }
    }

    return 1;
}


static void
conn_read(conn_t *c, char *buf)
{
    ssize_t  n, rc;
    size_t   off;

    n = read(c->fd, buf, READ_BUF);

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
    }

    if (n <= 0) {
        if (c->state == C_HEADERS) {
            conn_fail(c, &st.fail_closed);

        } else {
            st.closed++;
            if (measuring) {
                st.window_closed++;
            }
            conn_close(c, 0);
        }

        return;
    }

    now_us = real_us();

    if (c->state == C_HEADERS) {
        off = 0;
        rc = conn_head(c, buf, (size_t) n, &off);

        if (rc == -1) {
            conn_fail(c, &st.fail_closed);
            return;
        }

        if (rc == -2) {
            conn_fail(c, &st.fail_status);
            return;
        }

        if (rc == 0) {
            return;
        }

        free(c->hdr);
        c->hdr = NULL;
        c->state = C_STREAM;
        c->kstate = K_SIZE;
        c->chunk_left = 0;
        st.established++;
        st.open++;

        buf += off;
        n -= (ssize_t) off;
    }

    if (n > 0 && body_feed(c, buf, (size_t) n)) {
        /* the last chunk: the server ended the stream */
        st.closed++;
        if (measuring) {
            st.window_closed++;
        }
        conn_close(c, 1);
    }
}


static void
poll_once(int timeout_ms, char *buf)
{
    int                 i, n;
    conn_t             *c;
    struct epoll_event  evs[1024];

    n = epoll_wait(ep, evs, 1024, timeout_ms);

    if (n == -1) {
        if (errno == EINTR) {
            return;
        }
        die("epoll_wait");
    }

    for (i = 0; i < n; i++) {
        c = &conns[evs[i].data.u32];

        if (c->state == C_CONNECTING) {
            conn_connected(c, (int) evs[i].data.u32);

        } else if (c->state == C_HEADERS || c->state == C_STREAM) {
            conn_read(c, buf);
        }
    }
}


static mem_t read_mem_all(void);


/*
 * runs the loop until deadline (monotonic seconds); once a second, the
 * workers' memory: past --max-rss-mb the run is cut short
 */
static void
run_until(double deadline, char *buf)
{
    double  t;
    mem_t   m;

    static double  next_check;

    for ( ;; ) {
        t = mono();
        if (t >= deadline || aborted) {
            return;
        }

        if (opt_npids && t >= next_check) {
            next_check = t + 1;
            m = read_mem_all();

            if (m.rss_kb > peak_rss_kb) {
                peak_rss_kb = m.rss_kb;
            }

            if (opt_max_rss_kb && m.rss_kb > opt_max_rss_kb) {
                fprintf(stderr, "sse-load[%s]: the workers hold %ld MB,"
                        " over --max-rss-mb: cutting the run short\n",
                        opt_label, m.rss_kb / 1024);
                aborted = 1;
                return;
            }
        }

        poll_once((int) ((deadline - t) * 1000) + 1 > 100
                  ? 100 : (int) ((deadline - t) * 1000) + 1, buf);
    }
}


/* --- main --------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr,
        "usage: sse-load --port PORT [--host IP] [--path PATH] [-n CONNS]\n"
        "                [--connect-rate PER_S] [--connect-timeout S]\n"
        "                [--settle S] [--duration S] [--http10]\n"
        "                [--src-addrs K] [--pids PID,PID]\n"
        "                [--run 'COMMAND'] [--msg-rate R] [--label NAME]\n"
        "                [--max-rss-mb MB] [--aux-pids PID,PID]\n");
    exit(2);
}


static void
parse_pids(const char *s, pid_t *pids, int *npids)
{
    char  *end;
    long   v;

    while (*s) {
        v = strtol(s, &end, 10);
        if (end == s || v <= 0 || *npids == MAX_PIDS) {
            usage();
        }

        pids[(*npids)++] = (pid_t) v;
        s = end;

        if (*s == ',') {
            s++;
        }
    }
}


static void
raise_nofile(int want)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        die("getrlimit");
    }

    if (rl.rlim_cur >= (rlim_t) want) {
        return;
    }

    rl.rlim_cur = (rlim_t) want;

    if (rl.rlim_max < rl.rlim_cur) {
        rl.rlim_max = rl.rlim_cur;      /* root (CAP_SYS_RESOURCE) may */
    }

    if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
        (void) getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;

        if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < (rlim_t) want)
        {
            fprintf(stderr, "sse-load: cannot open %d files (limit %lu)\n",
                    want, (unsigned long) rl.rlim_cur);
            exit(2);
        }
    }
}


int
main(int argc, char **argv)
{
    int                 i, started, status, ready;
    char               *buf;
    long                tck;
    mem_t               mem0, mem_idle, mem_end;
    pid_t               child = -1;
    double              t0, t, connect_s, win_start, win_s, deadline;
    long long           cpu0[MAX_PIDS], cpu1[MAX_PIDS], child_cpu0 = -1,
                        child_cpu1 = -1;
    struct rusage       ru0, ru1;
    double              wcpu, self_cpu, aux_cpu, busy_cpu, others_cpu;
    long long           aux0[MAX_PIDS], busy0, busy1;
    uint64_t            open_end;

    for (i = 1; i < argc; i++) {
        const char  *a = argv[i];
        const char  *v = (i + 1 < argc) ? argv[i + 1] : NULL;

        if (strcmp(a, "--http10") == 0) {
            opt_http10 = 1;
            continue;
        }

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
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--conns") == 0) {
            opt_conns = atoi(v);
        } else if (strcmp(a, "--connect-rate") == 0) {
            opt_connect_rate = atof(v);
        } else if (strcmp(a, "--connect-timeout") == 0) {
            opt_connect_timeout = atof(v);
        } else if (strcmp(a, "--settle") == 0) {
            opt_settle = atof(v);
        } else if (strcmp(a, "--duration") == 0) {
            opt_duration = atof(v);
        } else if (strcmp(a, "--src-addrs") == 0) {
            opt_src_addrs = atoi(v);
        } else if (strcmp(a, "--pids") == 0) {
            parse_pids(v, opt_pids, &opt_npids);
        } else if (strcmp(a, "--aux-pids") == 0) {
            parse_pids(v, opt_aux, &opt_naux);
        } else if (strcmp(a, "--run") == 0) {
            opt_run = v;
        } else if (strcmp(a, "--msg-rate") == 0) {
            opt_msg_rate = atof(v);
        } else if (strcmp(a, "--label") == 0) {
            opt_label = v;
        } else if (strcmp(a, "--max-rss-mb") == 0) {
            opt_max_rss_kb = atol(v) * 1024;
        } else {
            usage();
        }
    }

    if (opt_port <= 0 || opt_conns < 0 || opt_connect_rate <= 0
        || opt_src_addrs < 1 || opt_src_addrs > 250)
    {
        usage();
    }

    signal(SIGPIPE, SIG_IGN);
    raise_nofile(opt_conns + 64);

    tck = sysconf(_SC_CLK_TCK);

    conns = calloc((size_t) (opt_conns ? opt_conns : 1), sizeof(conn_t));
    buf = malloc(READ_BUF);
    if (conns == NULL || buf == NULL) {
        die("malloc");
    }

    for (i = 0; i < opt_conns; i++) {
        conns[i].fd = -1;
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep == -1) {
        die("epoll_create1");
    }

    reqlen = snprintf(reqbuf, sizeof(reqbuf),
                      "GET %s HTTP/1.%d\r\nHost: %s:%d\r\n"
                      "Accept: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\n\r\n",
                      opt_path, opt_http10 ? 0 : 1, opt_host, opt_port);

    /* 1. memory with none of our streams */
    mem0 = read_mem_all();

    /* 2. connect at the given rate */
    t0 = mono();
    started = 0;
    deadline = t0 + opt_connect_timeout;

    for ( ;; ) {
        t = mono();

        while (started < opt_conns
               && started < (int) ((t - t0) * opt_connect_rate) + 1)
        {
            conn_start(started++);
        }

        if (st.established + st.failed >= (uint64_t) opt_conns
            || t >= deadline)
        {
            break;
        }

        poll_once(1, buf);
    }

    connect_s = mono() - t0;

    /* those still connecting or waiting for an answer count as failed */
    for (i = 0; i < opt_conns; i++) {
        if (conns[i].state == C_CONNECTING || conns[i].state == C_HEADERS) {
            conn_fail(&conns[i], &st.fail_connect);
        }
    }

    fprintf(stderr, "sse-load[%s]: %llu/%d streams open in %.2f s "
            "(%llu failed: connect %llu, status %llu (last %d), "
            "closed %llu)\n", opt_label,
            (unsigned long long) st.established, opt_conns, connect_s,
            (unsigned long long) st.failed,
            (unsigned long long) st.fail_connect,
            (unsigned long long) st.fail_status, st.last_status,
            (unsigned long long) st.fail_closed);

    /* 3. memory with the streams idle (a short pause lets the workers finish
     *    with the last handshakes; nothing is published yet) */
    run_until(mono() + 1.0, buf);
    mem_idle = read_mem_all();

    /* 4. the publisher */
    if (opt_run) {
        fflush(stdout);
        child = fork();

        if (child == -1) {
            die("fork");
        }

        if (child == 0) {
            execl("/bin/sh", "sh", "-c", opt_run, (char *) NULL);
            _exit(127);
        }
    }

    /* 5. settle, then measure */
    run_until(mono() + opt_settle, buf);

    for (i = 0; i < opt_npids; i++) {
        cpu0[i] = read_cpu(opt_pids[i]);
    }

    if (child > 0) {
        child_cpu0 = read_cpu(child);
    }

    (void) cpu_sum(opt_aux, opt_naux, aux0, 0, tck);
    busy0 = read_busy();
    getrusage(RUSAGE_SELF, &ru0);
    win_start = mono();
    measuring = 1;

    run_until(win_start + opt_duration, buf);

    measuring = 0;
    win_s = mono() - win_start;

    for (i = 0; i < opt_npids; i++) {
        cpu1[i] = read_cpu(opt_pids[i]);
    }

    if (child > 0) {
        child_cpu1 = read_cpu(child);
    }

    aux_cpu = cpu_sum(opt_aux, opt_naux, aux0, 1, tck);
    busy1 = read_busy();
    getrusage(RUSAGE_SELF, &ru1);
    mem_end = read_mem_all();

    /* the publisher ends by itself; wait for it (reading on), bounded */
    if (child > 0) {
        deadline = mono() + 30;
        ready = 0;

        while (mono() < deadline) {
            if (waitpid(child, &status, WNOHANG) == child) {
                ready = 1;
                break;
            }

            poll_once(50, buf);
        }

        if (!ready) {
            fprintf(stderr, "sse-load: the publisher did not end, "
                    "stopping it\n");
            kill(child, SIGTERM);
            waitpid(child, &status, 0);
        }
    }

    open_end = st.open;

    for (i = 0; i < opt_conns; i++) {
        if (conns[i].state != C_DONE && conns[i].state != C_FREE) {
            conn_close(&conns[i], 0);
        }
    }

    /* 6. report */
    wcpu = 0;
    for (i = 0; i < opt_npids; i++) {
        if (cpu0[i] >= 0 && cpu1[i] >= 0) {
            wcpu += (double) (cpu1[i] - cpu0[i]) / (double) tck;
        }
    }

    self_cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec)
               + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6
               + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
               + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    busy_cpu = (busy0 >= 0 && busy1 >= 0) ? (double) (busy1 - busy0) / tck : 0;

    /* what else ran on the machine meanwhile: other users' processes */
    others_cpu = busy_cpu - wcpu - self_cpu - aux_cpu;

    {
        double  dps = win_s > 0 ? st.window_events / win_s : 0;
        double  offered = opt_msg_rate * (double) st.established;
        double  pub_cpu = (child_cpu0 >= 0 && child_cpu1 >= 0)
                          ? (double) (child_cpu1 - child_cpu0) / tck : 0;
        long    per_rss = 0, per_pss = 0;

        if (st.established && mem0.ok && mem_idle.ok) {
            per_rss = (long) ((mem_idle.rss_kb - mem0.rss_kb) * 1024.0
                              / (double) st.established);
            per_pss = (long) ((mem_idle.pss_kb - mem0.pss_kb) * 1024.0
                              / (double) st.established);
        }

        if (opt_duration > 0) {
            fprintf(stderr,
                "sse-load[%s]: %.1f s window: %llu events, %.0f/s"
                " (offered %.0f/s: %.1f%%), %.1f MB/s;"
                " latency p50 %.2f ms p99 %.2f ms p99.9 %.2f ms"
                " max %.2f ms (%llu samples, %llu without sent_us);"
                " %llu streams closed by the server in the window,"
                " %llu open at the end\n",
                opt_label, win_s, (unsigned long long) st.window_events, dps,
                offered, offered > 0 ? 100.0 * dps / offered : 0,
                st.window_bytes / win_s / 1e6,
                h_percentile(&hist, 50) / 1e3, h_percentile(&hist, 99) / 1e3,
                h_percentile(&hist, 99.9) / 1e3, hist.max / 1e3,
                (unsigned long long) hist.n,
                (unsigned long long) st.window_no_ts,
                (unsigned long long) st.window_closed,
                (unsigned long long) open_end);

            fprintf(stderr,
                "sse-load[%s]: CPU in the window: workers %.2f s (%.0f%%),"
                " this client %.2f s (%.0f%%), publisher %.2f s,"
                " --aux-pids %.2f s; all CPUs busy %.2f s, of which"
                " %.2f s (%.0f%%) other processes\n",
                opt_label, wcpu, 100 * wcpu / win_s, self_cpu,
                100 * self_cpu / win_s, pub_cpu, aux_cpu, busy_cpu,
                others_cpu - pub_cpu, 100 * (others_cpu - pub_cpu) / win_s);
        }

        if (opt_npids) {
            fprintf(stderr,
                "sse-load[%s]: workers' memory: RSS %ld -> %ld kB idle"
                " (%ld B a stream) -> %ld kB after; Pss %ld -> %ld kB"
                " (%ld B a stream) -> %ld kB\n", opt_label,
                mem0.rss_kb, mem_idle.rss_kb, per_rss, mem_end.rss_kb,
                mem0.pss_kb, mem_idle.pss_kb, per_pss, mem_end.pss_kb);
        }

        printf("RESULT label=%s conns=%d established=%llu failed=%llu"
               " connect_s=%.2f window_s=%.2f events=%llu dps=%.0f"
               " offered_dps=%.0f delivered_pct=%.1f mbps=%.2f"
               " p50_us=%lld p90_us=%lld p99_us=%lld p999_us=%lld max_us=%lld"
               " mean_us=%.0f samples=%llu no_ts=%llu closed=%llu"
               " open_end=%llu worker_cpu_s=%.2f client_cpu_s=%.2f"
               " pub_cpu_s=%.2f rss0_kb=%ld rss_idle_kb=%ld rss_end_kb=%ld"
               " pss0_kb=%ld pss_idle_kb=%ld pss_end_kb=%ld"
               " rss_per_sub_b=%ld pss_per_sub_b=%ld peak_rss_kb=%ld"
               " aborted=%d aux_cpu_s=%.2f busy_cpu_s=%.2f"
               " others_cpu_s=%.2f\n",
               opt_label, opt_conns, (unsigned long long) st.established,
               (unsigned long long) st.failed, connect_s, win_s,
               (unsigned long long) st.window_events, dps, offered,
               offered > 0 ? 100.0 * dps / offered : 0,
               win_s > 0 ? st.window_bytes / win_s / 1e6 : 0,
               (long long) h_percentile(&hist, 50),
               (long long) h_percentile(&hist, 90),
               (long long) h_percentile(&hist, 99),
               (long long) h_percentile(&hist, 99.9),
               (long long) hist.max, hist.n ? hist.sum / hist.n : 0,
               (unsigned long long) hist.n,
               (unsigned long long) st.window_no_ts,
               (unsigned long long) st.window_closed,
               (unsigned long long) open_end, wcpu, self_cpu, pub_cpu,
               mem0.rss_kb, mem_idle.rss_kb, mem_end.rss_kb,
               mem0.pss_kb, mem_idle.pss_kb, mem_end.pss_kb,
               per_rss, per_pss, peak_rss_kb, aborted, aux_cpu, busy_cpu,
               others_cpu - pub_cpu);
    }

    return 0;
}
