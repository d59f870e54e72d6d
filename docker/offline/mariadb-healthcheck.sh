#!/usr/bin/env bash
# Health check of the offline MariaDB image: the same check the compose file runs against the official mysql image,
# a TCP login as MYSQL_USER to MYSQL_DATABASE. TCP on purpose: the temporary init server listens on the socket
# only, so "healthy" means init has finished. The password goes through MYSQL_PWD, never the command line.
set -Eeuo pipefail

die() {
	printf 'healthcheck: %s\n' "$*" >&2
	exit 1
}

# The entrypoint's *_FILE rule (it refused both set at start, so this only reads the files).
# shellcheck source=bash_files/file_env.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/file_env.sh"
for name in MYSQL_USER MYSQL_PASSWORD MYSQL_DATABASE; do
	file_env "$name"
done

MYSQL_PWD="$MYSQL_PASSWORD" exec mysql --protocol=TCP -h 127.0.0.1 -u "$MYSQL_USER" -e 'SELECT 1' "$MYSQL_DATABASE"
