# skopeo from Debian packages only: signs released images and verifies their signatures (sigstore/cosign format,
# stored in the registry as sha256-<digest>.sig). Keys, passphrase and policy are mounted read-only at run time,
# never part of the image; it runs as whatever --user the suite passes (the caller's: the private key is 0600).
# registries.d's use-sigstore-attachments makes skopeo store and read signatures in the registry, as cosign does.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# The suite pins the version (DL3008). ca-certificates: a remote REGISTRY over HTTPS.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends skopeo ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && install -d /etc/containers/registries.d \
    && printf 'default-docker:\n  use-sigstore-attachments: true\n' > /etc/containers/registries.d/lifecycle.yaml

ENV HOME=/tmp
ENTRYPOINT ["skopeo"]
CMD ["--help"]
