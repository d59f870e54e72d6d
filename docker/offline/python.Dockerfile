# Python base image from Debian packages only: stands in for python:<ver>-slim when no registry is reachable.
# Runtime only, no compiler: dependencies must come as wheels. A drop-in for the official image: its whole standard
# library (Debian splits dbm.gnu/dbm.ndbm into python3-gdbm, venv into python3-venv), pip on PATH, and no
# EXTERNALLY-MANAGED marker (the official image has none: `pip install` works as it does there).
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
        ca-certificates python3 python3-venv python3-gdbm python3-pip tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && if [ ! -e /usr/bin/pip ]; then ln -s /usr/bin/pip3 /usr/local/bin/pip; fi

CMD ["python3"]
