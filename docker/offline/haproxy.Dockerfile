# HAProxy from Debian packages only: stands in for the official haproxy image when no registry is reachable
# (configuration mounted at /usr/local/etc/haproxy/haproxy.cfg, master-worker in the foreground, SIGUSR1 stops
# it gracefully). The configuration and the certificate are never part of the image.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# Made before the package so it keeps these ids (a system uid: adduser refuses the official image's 99).
RUN groupadd --system --gid 997 haproxy \
    && useradd --system --uid 997 --gid 997 --home-dir /var/lib/haproxy --no-create-home \
        --shell /usr/sbin/nologin haproxy

# The suite pins the versions (DL3008). policy-rc.d keeps the package from starting a proxy during the build.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /etc/haproxy/haproxy.cfg \
    && install -d /usr/local/etc/haproxy

# The name is fixed to uid 997 above, so it resolves the same everywhere (DL3066).
# hadolint ignore=DL3066
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
