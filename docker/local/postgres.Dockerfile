# PostgreSQL from Debian's packages, for machines that reach no image registry
# (scripts/local-images.sh). Like the compose file's postgres image: trust auth, user
# postgres, data in /var/lib/postgresql/data.
#checkov:skip=CKV_DOCKER_7:the base is a build argument; scripts/local-images.sh passes a tagged local image
ARG BASE=spruce-local/debian:bookworm
FROM ${BASE}
# No cluster of the package's own: the entrypoint makes one in the volume.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/spruce.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc /usr/share/man \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER postgres
HEALTHCHECK --interval=3s --timeout=3s --retries=20 CMD ["pg_isready", "-U", "postgres"]
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
