#!/usr/bin/env bash
# The RabbitMQ destination tests publish to a broker on 127.0.0.1:5672 (guest/guest, which
# RabbitMQ allows from loopback only). Starts the machine's broker when it is down, installing
# Debian's rabbitmq-server first when it is missing.
set -euo pipefail

up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
up && exit 0

as_root=""
[ "$(id -u)" = 0 ] || as_root="sudo"
if ! command -v rabbitmq-server >/dev/null && ! [ -x /usr/sbin/rabbitmq-server ]; then
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get install -y -q rabbitmq-server >/dev/null ||
        { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q rabbitmq-server >/dev/null; }
fi
$as_root service rabbitmq-server start >/dev/null 2>&1 || $as_root /usr/sbin/rabbitmq-server -detached
for _ in $(seq 1 120); do
    up && exit 0
    sleep 0.5
done
echo "ensure-rabbitmq: no broker on 127.0.0.1:5672 after 60 s" >&2
exit 1
