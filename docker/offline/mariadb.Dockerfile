# MariaDB from Debian packages only, behind the official mysql image's interface
# (MYSQL_* variables, /docker-entrypoint-initdb.d, data in the /var/lib/mysql volume, port 3306).
# mariadb-backup (and mbstream) for physical backups (lifecycle/physical.py), as the official mariadb image has.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# Made before the package so it keeps these ids: volumes stay readable across rebuilds and suites.
RUN groupadd --system --gid 999 mysql \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/mysql --no-create-home \
        --shell /usr/sbin/nologin mysql

# The suite pins the versions (DL3008). policy-rc.d keeps the package from starting a server during the build;
# the data directory it installs is emptied so the entrypoint initialises each new volume itself.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        mariadb-backup mariadb-client mariadb-server tzdata \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && { command -v mysql || ln -s /usr/bin/mariadb /usr/local/bin/mysql; } \
    && { command -v mysqladmin || ln -s /usr/bin/mariadb-admin /usr/local/bin/mysqladmin; } \
    && rm -rf /var/lib/mysql \
    && mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d \
    && chown mysql:mysql /var/lib/mysql /run/mysqld \
    && chmod 0750 /var/lib/mysql \
    && printf '%s\n' '# Container defaults: reachable from other containers, no DNS lookups per connection.' \
        '[mariadbd]' 'bind-address = 0.0.0.0' 'skip-name-resolve' \
        > /etc/mysql/mariadb.conf.d/99-container.cnf

# The build context is the checkout: the *_FILE helper is the app images' own (bash_files/file_env.sh).
COPY --chmod=0755 docker/offline/mariadb-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY --chmod=0755 docker/offline/mariadb-healthcheck.sh bash_files/file_env.sh /usr/local/bin/

VOLUME /var/lib/mysql
# The name is fixed to uid 999 above, so it resolves the same everywhere (DL3066).
# hadolint ignore=DL3066
USER mysql
EXPOSE 3306
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["mariadb-healthcheck.sh"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["mariadbd"]
