#!/bin/sh
# The last step of each RUN that makes a layer of the shipped images (docker/Dockerfile): gives every file, folder
# and link that the RUN created or changed the time SOURCE_DATE_EPOCH, so the layer is byte-identical for identical
# inputs, whichever build-cache record the engine picked, or none (--no-cache). Engine 20.10's BuildKit cannot do
# it itself (its exporter's rewrite-timestamp came with BuildKit 0.13). See docs/releases.md.
# Usage: normalise.sh START   START: `date +%s` when the RUN began. The RUN's mounts are skipped: the Dockerfile
# mounts what a RUN reads from the checkout or other stages under a tmpfs at /mnt, which leaves no trace in a layer.
set -eu

main() {
	start="$1"
	# A second earlier: a file written in the second the RUN began is still caught (layers below are normalised).
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /mnt \
		-o -path /etc/hosts -o -path /etc/resolv.conf -o -path /etc/hostname -o -path /root/.cache \
		-o -path /var/cache/apt -o -path /var/lib/apt \) -prune \
		-o -newermt "@$((start - 1))" -exec touch -h -d "@${SOURCE_DATE_EPOCH:?set in the Dockerfile}" {} +
}

main "$@"
