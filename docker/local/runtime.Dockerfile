# The services' runtime base made from Debian packages alone, for machines that reach no
# image registry (scripts/local-images.sh): what distroless/cc holds — glibc, libgcc, CA
# certificates, time zones, a nonroot user (65532) and /tmp — and no shell.
#checkov:skip=CKV_DOCKER_7:the base is a build argument; scripts/local-images.sh passes a tagged local image
#checkov:skip=CKV_DOCKER_2:a base image with no program of its own; the service images built on it check their health
ARG BASE=spruce-local/debian:bookworm

FROM ${BASE} AS packages
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot /download \
    && cd /download \
    && apt-get download libc6 libgcc-s1 netbase tzdata \
    && for deb in *.deb; do dpkg-deb -x "$deb" /rootfs; done \
    && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/lintian /rootfs/usr/share/man \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
    && chmod 1777 /rootfs/tmp \
    && chown 65532:65532 /rootfs/home/nonroot

FROM scratch
COPY --from=packages /rootfs /
USER 65532:65532
