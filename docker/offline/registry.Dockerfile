# The distribution registry from Debian packages only: stands in for the official registry:2 image when no
# registry is reachable (port 5000, data in the /var/lib/registry volume, config in /etc/docker/registry/).
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# Made before the package so it keeps these ids: the data volume stays writable across rebuilds and suites.
RUN groupadd --system --gid 998 docker-registry \
    && useradd --system --uid 998 --gid 998 --home-dir /var/lib/registry --no-create-home \
        --shell /usr/sbin/nologin docker-registry

# The suite pins the versions (DL3008). policy-rc.d keeps the package from starting a registry during the build.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /var/lib/registry \
    && install -d -o docker-registry -g docker-registry -m 0750 /var/lib/registry

COPY registry-config.yml /etc/docker/registry/config.yml

VOLUME /var/lib/registry
# The name is fixed to uid 998 above, so it resolves the same everywhere (DL3066).
# hadolint ignore=DL3066
USER docker-registry
EXPOSE 5000
ENTRYPOINT ["docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
