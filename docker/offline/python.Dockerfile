# Python base image from Debian packages only: stands in for python:<ver>-slim when no registry is reachable.
# Runtime only, no compiler: dependencies must come as wheels.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1
# /etc/hosts (debootstrap writes none; resolv.conf it has): with both present, Engine 20.10's BuildKit makes no
# stand-ins for them in a RUN, whose removal would stamp /etc with the build's time in every layer built on this.
COPY hosts /etc/hosts

# The suite pins the versions (DL3008), and this is the image's only package step.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python

CMD ["python3"]
