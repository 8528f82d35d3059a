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
 *
 * --rtt delays every broker's answers, to test with a slow Kafka.
 * --missing makes the broker answer for NAME as Kafka answers for a topic
 * that does not exist (UNKNOWN_TOPIC_OR_PART in Metadata): the mock
 * cluster otherwise creates every topic that a client asks about.
 *
 * Runs until SIGTERM or SIGINT, then removes the file and exits 0.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define DEVBROKER_MAX_TOPICS  64


static volatile sig_atomic_t  devbroker_stop;


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
            "[--missing NAME]...\n");
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
    int                       i, brokers, ntopics, nmissing, partitions, rtt;
    char                      errstr[512], *colon;
    const char               *bootstrap_file, *topics[DEVBROKER_MAX_TOPICS];
    const char               *missing[DEVBROKER_MAX_TOPICS];
    const char               *bootstraps;
    rd_kafka_t               *rk;
    rd_kafka_conf_t          *conf;
    struct sigaction          sa;
    rd_kafka_resp_err_t       err;
    rd_kafka_mock_cluster_t  *mcluster;

    bootstrap_file = NULL;
    brokers = 1;
    ntopics = 0;
    nmissing = 0;
    rtt = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap-file") == 0 && i + 1 < argc) {
            bootstrap_file = argv[++i];

        } else if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--rtt") == 0 && i + 1 < argc) {
            rtt = atoi(argv[++i]);

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

    if (bootstrap_file == NULL || brokers < 1 || brokers > 16) {
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

    mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (mcluster == NULL) {
        fprintf(stderr, "devbroker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
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

        err = rd_kafka_mock_topic_create(mcluster, topics[i], partitions, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "devbroker: create topic \"%s\": %s\n",
                    topics[i], rd_kafka_err2str(err));
            return 1;
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

    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

    if (devbroker_write_bootstrap(bootstrap_file, bootstraps) != 0) {
        return 1;
    }

    fprintf(stderr, "devbroker: listening on %s (%d broker%s, %d topic%s)\n",
            bootstraps, brokers, brokers == 1 ? "" : "s",
            ntopics, ntopics == 1 ? "" : "s");

    while (!devbroker_stop) {
        pause();
    }

    unlink(bootstrap_file);
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);

    fprintf(stderr, "devbroker: stopped\n");

    return 0;
}
