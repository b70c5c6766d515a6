# RabbitMQ (with its management UI) from Debian's packages, for machines that reach no image
# registry (scripts/local-images.sh). guest/guest may log in from the compose network.
#checkov:skip=CKV_DOCKER_7:the base is a build argument; scripts/local-images.sh passes a tagged local image
ARG BASE=spruce-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && printf 'loopback_users = none\nlog.console = true\nlog.file = false\n' > /etc/rabbitmq/rabbitmq.conf
USER rabbitmq
HEALTHCHECK --interval=5s --timeout=10s --retries=24 CMD ["rabbitmq-diagnostics", "-q", "check_port_connectivity"]
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
