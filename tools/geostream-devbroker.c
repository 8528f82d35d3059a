/*
 * geostream-devbroker: a small Kafka broker for development and tests.
 *
 * It runs librdkafka's mock cluster, which speaks the real Kafka protocol
 * on loopback, so the module and independent clients (kcat, python3-kafka)
 * talk to it exactly as they would to Apache Kafka.  The mock cluster only
 * listens on random ports, so the bootstrap address is written to a file
 * (atomically, once the cluster is up) for the caller to read.
 *
 *   geostream-devbroker --bootstrap-file FILE [--brokers N] [--rtt MS]
 *                       [--topic NAME[:PARTITIONS]]... [--missing NAME]...
 *                       [--port PORT] [--control SOCKET]
 *
 * --rtt delays every broker's answers, to test with a slow Kafka.
 * --missing makes the broker answer for NAME as Kafka answers for a topic
 * that does not exist (UNKNOWN_TOPIC_OR_PART in Metadata): the mock
 * cluster otherwise creates every topic that a client asks about.
 * --port makes broker i listen on PORT + i - 1 instead of a random port,
 * so that a broker started again (empty, as a broker that lost its data)
 * is found by clients at the same address.
 * --control listens on a Unix socket for fault commands, one a line,
 * each answered "ok" or "error: ...":
 *
 *   down N|all   broker N (or every broker) drops its connections and
 *                refuses new ones; the partitions N leads move to the
 *                first broker still up, as Kafka's controller would move
 *                them (topics made with --topic only)
 *   up N|all     the broker takes connections again
 *
 * Runs until SIGTERM or SIGINT, then removes the file and exits 0.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define DEVBROKER_MAX_TOPICS   64
#define DEVBROKER_MAX_BROKERS  16


typedef struct {
    const char  *name;
    int          partitions;
} devbroker_topic_t;


static volatile sig_atomic_t  devbroker_stop;

/* --port: the next fixed port a mock broker's listener gets */
static int                    devbroker_next_port;

static rd_kafka_mock_cluster_t  *devbroker_cluster;
static int                       devbroker_brokers;
static int                       devbroker_up[DEVBROKER_MAX_BROKERS + 1];
static devbroker_topic_t         devbroker_topics[DEVBROKER_MAX_TOPICS];
static int                       devbroker_ntopics;


/*
 * The mock cluster binds each broker's listener to 127.0.0.1 port 0 and
 * has no option for a port.  This program's own bind() comes before the
 * C library's for librdkafka too, so with --port it gives those listeners
 * fixed ports, in the order the brokers are made (1, 2, ...).
 */
int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    int                  one;
    struct sockaddr_in   sin;
    static int         (*libc_bind)(int, const struct sockaddr *, socklen_t);

    if (libc_bind == NULL) {
        libc_bind = (int (*)(int, const struct sockaddr *, socklen_t))
                    dlsym(RTLD_NEXT, "bind");
    }

    if (devbroker_next_port > 0 && addr->sa_family == AF_INET
        && len >= sizeof(sin)
        && ((const struct sockaddr_in *) addr)->sin_port == 0)
    {
        memcpy(&sin, addr, sizeof(sin));
        sin.sin_port = htons((uint16_t) devbroker_next_port++);

        /* a broker started again must not wait for TIME_WAIT to pass */
        one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

        return libc_bind(fd, (const struct sockaddr *) &sin, sizeof(sin));
    }

    return libc_bind(fd, addr, len);
}


static void
devbroker_on_signal(int signo)
{
    (void) signo;
    devbroker_stop = 1;
}


static void
devbroker_usage(void)
{
    fprintf(stderr, "usage: geostream-devbroker --bootstrap-file FILE "
            "[--brokers N] [--rtt MS] [--topic NAME[:PARTITIONS]]... "
            "[--missing NAME]... [--port PORT] [--control SOCKET]\n");
}


/* partition leaders as this program set them: [topic][partition] */
static int  *devbroker_leaders[DEVBROKER_MAX_TOPICS];


static int
devbroker_set_leader(int t, int partition, int broker)
{
    rd_kafka_resp_err_t  err;

    err = rd_kafka_mock_partition_set_leader(devbroker_cluster,
                                             devbroker_topics[t].name,
                                             partition, broker);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "devbroker: leader of %s [%d]: %s\n",
                devbroker_topics[t].name, partition, rd_kafka_err2str(err));
        return -1;
    }

    devbroker_leaders[t][partition] = broker;

    return 0;
}


/* every partition led by a broker that is up, if one is */
static int
devbroker_fail_over(int down)
{
    int  t, p, b, next;

    next = down;

    for (t = 0; t < devbroker_ntopics; t++) {
        for (p = 0; p < devbroker_topics[t].partitions; p++) {
            if (devbroker_leaders[t][p] != down) {
                continue;
            }

            /* the brokers still up take its partitions in turn */
            for (b = 0; b < devbroker_brokers; b++) {
                next = next % devbroker_brokers + 1;

                if (devbroker_up[next]) {
                    break;
                }
            }

            if (!devbroker_up[next]) {
                return 0;       /* none is up: the partitions wait */
            }

            if (devbroker_set_leader(t, p, next) != 0) {
                return -1;
            }

            fprintf(stderr, "devbroker: %s [%d] led by broker %d\n",
                    devbroker_topics[t].name, p, next);
        }
    }

    return 0;
}


static int
devbroker_set_state(int broker, int up)
{
    rd_kafka_resp_err_t  err;

    err = up ? rd_kafka_mock_broker_set_up(devbroker_cluster, broker)
             : rd_kafka_mock_broker_set_down(devbroker_cluster, broker);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }

    devbroker_up[broker] = up;

    fprintf(stderr, "devbroker: broker %d %s\n", broker, up ? "up" : "down");

    return up ? 0 : devbroker_fail_over(broker);
}


/* one control command; the answer goes in "reply" */
static void
devbroker_command(char *line, char *reply, size_t size)
{
    int    up, broker, first, last;
    char  *arg, *end;

    line[strcspn(line, "\r\n")] = '\0';

    arg = strchr(line, ' ');
    if (arg != NULL) {
        *arg++ = '\0';
    }

    if (strcmp(line, "down") == 0) {
        up = 0;

    } else if (strcmp(line, "up") == 0) {
        up = 1;

    } else {
        snprintf(reply, size, "error: unknown command \"%.64s\"\n", line);
        return;
    }

    if (arg != NULL && strcmp(arg, "all") == 0) {
        first = 1;
        last = devbroker_brokers;

    } else {
        broker = arg ? (int) strtol(arg, &end, 10) : 0;

        if (arg == NULL || *end != '\0' || broker < 1
            || broker > devbroker_brokers)
        {
            snprintf(reply, size, "error: no broker \"%.64s\"\n",
                     arg ? arg : "");
            return;
        }

        first = last = broker;
    }

    for (broker = first; broker <= last; broker++) {
        if (devbroker_set_state(broker, up) != 0) {
            snprintf(reply, size, "error: broker %d not %s\n", broker,
                     up ? "up" : "down");
            return;
        }
    }

    snprintf(reply, size, "ok\n");
}


static int
devbroker_control_listen(const char *path)
{
    int                 fd;
    struct sockaddr_un  sun;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "devbroker: control socket path too long\n");
        return -1;
    }

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    unlink(path);

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd == -1
        || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
        || listen(fd, 16) != 0)
    {
        fprintf(stderr, "devbroker: %s: %s\n", path, strerror(errno));
        return -1;
    }

    return fd;
}


/* a client's commands, a line each, until it closes */
static void
devbroker_control_serve(int lfd)
{
    int       fd;
    char      buf[512], reply[256];
    FILE     *in;

    fd = accept(lfd, NULL, NULL);
    if (fd == -1) {
        return;
    }

    in = fdopen(fd, "r+");
    if (in == NULL) {
        close(fd);
        return;
    }

    while (fgets(buf, sizeof(buf), in) != NULL) {
        devbroker_command(buf, reply, sizeof(reply));
        fputs(reply, in);
        fflush(in);
    }

    fclose(in);
}


static int
devbroker_write_bootstrap(const char *path, const char *bootstraps)
{
    char   tmp[4096];
    FILE  *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp)) {
        fprintf(stderr, "devbroker: bootstrap file path too long\n");
        return -1;
    }

    f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "devbroker: %s: %s\n", tmp, strerror(errno));
        return -1;
    }

    fprintf(f, "%s\n", bootstraps);

    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "devbroker: %s: %s\n", path, strerror(errno));
        return -1;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int                       i, p, brokers, ntopics, nmissing, partitions;
    int                       rtt, port, lfd;
    char                      errstr[512], *colon;
    const char               *bootstrap_file, *control;
    const char               *topics[DEVBROKER_MAX_TOPICS];
    const char               *missing[DEVBROKER_MAX_TOPICS];
    const char               *bootstraps;
    rd_kafka_t               *rk;
    rd_kafka_conf_t          *conf;
    struct pollfd             pfd;
    struct sigaction          sa;
    rd_kafka_resp_err_t       err;
    rd_kafka_mock_cluster_t  *mcluster;

    bootstrap_file = NULL;
    brokers = 1;
    ntopics = 0;
    nmissing = 0;
    rtt = 0;
    port = 0;
    control = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap-file") == 0 && i + 1 < argc) {
            bootstrap_file = argv[++i];

        } else if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--rtt") == 0 && i + 1 < argc) {
            rtt = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
            control = argv[++i];

        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc
                   && ntopics < DEVBROKER_MAX_TOPICS)
        {
            topics[ntopics++] = argv[++i];

        } else if (strcmp(argv[i], "--missing") == 0 && i + 1 < argc
                   && nmissing < DEVBROKER_MAX_TOPICS)
        {
            missing[nmissing++] = argv[++i];

        } else {
            devbroker_usage();
            return 2;
        }
    }

    if (bootstrap_file == NULL || brokers < 1
        || brokers > DEVBROKER_MAX_BROKERS || port < 0
        || port + brokers > 65536)
    {
        devbroker_usage();
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = devbroker_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* the mock cluster needs a client instance to live in; it is not used
     * as a client itself */
    conf = rd_kafka_conf_new();

    /* it has no bootstrap.servers of its own: silence that notice */
    rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "devbroker: rd_kafka_new: %s\n", errstr);
        return 1;
    }

    devbroker_next_port = port;

    mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (mcluster == NULL) {
        fprintf(stderr, "devbroker: cannot create the mock cluster%s\n",
                port ? " (are its ports free?)" : "");
        rd_kafka_destroy(rk);
        return 1;
    }

    devbroker_next_port = 0;
    devbroker_cluster = mcluster;
    devbroker_brokers = brokers;

    for (i = 1; i <= brokers; i++) {
        devbroker_up[i] = 1;
    }

    for (i = 0; i < ntopics; i++) {
        partitions = 1;
        colon = strchr(topics[i], ':');

        if (colon != NULL) {
            *colon = '\0';
            partitions = atoi(colon + 1);
        }

        if (partitions < 1) {
            fprintf(stderr, "devbroker: bad partition count for \"%s\"\n",
                    topics[i]);
            return 2;
        }

        /* replicated on every broker, so that any of them can lead */
        err = rd_kafka_mock_topic_create(mcluster, topics[i], partitions,
                                         brokers);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "devbroker: create topic \"%s\": %s\n",
                    topics[i], rd_kafka_err2str(err));
            return 1;
        }

        devbroker_topics[i].name = topics[i];
        devbroker_topics[i].partitions = partitions;
        devbroker_leaders[i] = calloc(partitions, sizeof(int));

        if (devbroker_leaders[i] == NULL) {
            return 1;
        }

        devbroker_ntopics = i + 1;

        /* leaders this program knows, so that "down" can move them */
        for (p = 0; p < partitions; p++) {
            if (devbroker_set_leader(i, p, p % brokers + 1) != 0) {
                return 1;
            }
        }
    }

    for (i = 0; i < nmissing; i++) {
        rd_kafka_mock_topic_set_error(mcluster, missing[i],
                                      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    }

    for (i = 1; rtt > 0 && i <= brokers; i++) {
        err = rd_kafka_mock_broker_set_rtt(mcluster, i, rtt);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "devbroker: rtt of broker %d: %s\n",
                    i, rd_kafka_err2str(err));
            return 1;
        }
    }

    lfd = -1;

    if (control != NULL) {
        lfd = devbroker_control_listen(control);
        if (lfd == -1) {
            return 1;
        }
    }

    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

    if (devbroker_write_bootstrap(bootstrap_file, bootstraps) != 0) {
        return 1;
    }

    fprintf(stderr, "devbroker: listening on %s (%d broker%s, %d topic%s)\n",
            bootstraps, brokers, brokers == 1 ? "" : "s",
            ntopics, ntopics == 1 ? "" : "s");

    while (!devbroker_stop) {
        if (lfd == -1) {
            pause();
            continue;
        }

        pfd.fd = lfd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, -1) == 1) {
            devbroker_control_serve(lfd);
        }
    }

    if (control != NULL) {
        unlink(control);
    }

    unlink(bootstrap_file);
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);

    fprintf(stderr, "devbroker: stopped\n");

    return 0;
}
