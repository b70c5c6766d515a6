# Redis from Debian's packages, for machines that reach no image registry
# (scripts/local-images.sh). The compose file gives the command line.
#checkov:skip=CKV_DOCKER_7:the base is a build argument; scripts/local-images.sh passes a tagged local image
ARG BASE=spruce-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man
USER redis
HEALTHCHECK --interval=3s --timeout=3s --retries=20 CMD ["redis-cli", "ping"]
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
