#!/usr/bin/env bash
# Health check of the offline MariaDB image: the same check the compose file runs against the official mysql image,
# a TCP login as MYSQL_USER to MYSQL_DATABASE. TCP on purpose: the temporary init server listens on the socket
# only, so "healthy" means init has finished. The password goes through MYSQL_PWD, never the command line.
set -Eeuo pipefail

# Like the entrypoint, accept the *_FILE variants.
for name in MYSQL_USER MYSQL_PASSWORD MYSQL_DATABASE; do
	file_var="${name}_FILE"
	if [[ -z "${!name:-}" && -n "${!file_var:-}" ]]; then
		export "$name"="$(<"${!file_var}")"
	fi
done

MYSQL_PWD="$MYSQL_PASSWORD" exec mysql --protocol=TCP -h 127.0.0.1 -u "$MYSQL_USER" -e 'SELECT 1' "$MYSQL_DATABASE"
