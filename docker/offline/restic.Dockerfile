# restic from Debian packages only: encrypts, deduplicates and copies backups off the machine (SFTP or S3).
# The repository password and the SSH key are mounted read-only at run time (RESTIC_PASSWORD_FILE, the key file),
# never part of the image or a command line; it runs as whatever --user the suite passes (the caller's: the key
# is 0600). openssh-client: restic's SFTP backend runs ssh.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# The suite pins the version (DL3008). ca-certificates: an S3 endpoint over HTTPS.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends restic openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV HOME=/tmp RESTIC_CACHE_DIR=/tmp/restic-cache
ENTRYPOINT ["restic"]
CMD ["--help"]
