#!/usr/bin/env bash
# geostream image entrypoint: fill the nginx.conf template from the
# environment, then run nginx in the foreground (as PID 1, via exec).
#
#   KAFKA_BROKERS                host:port[,host:port]   (required)
#   GEOSTREAM_WORKER_PROCESSES   a number or "auto"      (default: auto)
#
# Arguments are passed on to nginx, e.g. `-t` only tests the configuration.
set -euo pipefail

template=${GEOSTREAM_TEMPLATE:-/etc/geostream/nginx.conf.template}
prefix=${GEOSTREAM_PREFIX:-/var/lib/geostream}

die() { echo "geostream-entrypoint: $*" >&2; exit 1; }

brokers=${KAFKA_BROKERS:-}
workers=${GEOSTREAM_WORKER_PROCESSES:-auto}

# Only characters that a broker list needs: this keeps the value from
# breaking the sed expression below or adding nginx directives.
broker_re='^[][A-Za-z0-9._:/,-]+$'
[[ -n $brokers ]] || die "KAFKA_BROKERS is not set (e.g. KAFKA_BROKERS=kafka:9092)"
[[ $brokers =~ $broker_re ]] || die "KAFKA_BROKERS has characters a broker list cannot have: '$brokers'"
[[ $workers =~ ^(auto|[1-9][0-9]*)$ ]] || die "GEOSTREAM_WORKER_PROCESSES must be a number or auto, not '$workers'"

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/temp"
sed -e "s|\${KAFKA_BROKERS}|$brokers|g" \
    -e "s|\${GEOSTREAM_WORKER_PROCESSES}|$workers|g" \
    "$template" > "$prefix/conf/nginx.conf"

# nginx reads NGINX as inherited sockets (binary upgrade): never pass one
unset NGINX

exec nginx -e stderr -p "$prefix/" -c conf/nginx.conf "$@"
