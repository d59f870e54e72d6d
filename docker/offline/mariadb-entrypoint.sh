#!/usr/bin/env bash
# Entrypoint of the offline MariaDB image, in the style of the docker-library mysql/mariadb entrypoints.
#
# Honours the official mysql image's interface: MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER,
# MYSQL_PASSWORD (each also as *_FILE), MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
# MYSQL_ROOT_HOST, and /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz.
# On an empty data volume only: install the system tables, start a temporary server on the default socket with
# --skip-networking (so no TCP health check can pass before init is done), create the root password, the database
# and the user, run the init scripts, stop the temporary server. Then exec mariadbd as PID 1.
# Passwords reach the server through stdin or MYSQL_PWD, never a command line.
set -Eeuo pipefail

readonly DATADIR=/var/lib/mysql
readonly SOCKET=/run/mysqld/mysqld.sock
readonly INITDB_DIR=/docker-entrypoint-initdb.d
# Seconds the temporary server may take to accept connections.
readonly START_TIMEOUT="${MARIADB_START_TIMEOUT:-60}"

log() { printf '%s [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; }
warn() { log "Warning: $*"; }
die() {
	log "Error: $*"
	exit 1
}

# file_env VAR [DEFAULT]: export VAR from itself or from the file named by VAR_FILE (not both); in the image
# it sits next to this script.
# shellcheck source=bash_files/file_env.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/file_env.sh"

setup_env() {
	file_env MYSQL_ROOT_PASSWORD
	file_env MYSQL_DATABASE
	file_env MYSQL_USER
	file_env MYSQL_PASSWORD
	file_env MYSQL_ROOT_HOST '%'
	export MYSQL_ALLOW_EMPTY_PASSWORD="${MYSQL_ALLOW_EMPTY_PASSWORD:-}"
	export MYSQL_RANDOM_ROOT_PASSWORD="${MYSQL_RANDOM_ROOT_PASSWORD:-}"
}

database_exists() { [[ -d "$DATADIR/mysql" ]]; }

verify_env() {
	if [[ -z "$MYSQL_ROOT_PASSWORD" && -z "$MYSQL_ALLOW_EMPTY_PASSWORD" && -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]]; then
		die "database is uninitialised and no password option is set; set MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD"
	fi
	if [[ "$MYSQL_USER" == root ]]; then
		die "MYSQL_USER=root would clash with the root account; set MYSQL_ROOT_PASSWORD for root and another name for MYSQL_USER"
	fi
	if [[ -n "$MYSQL_USER" && -z "$MYSQL_PASSWORD" ]]; then
		die "MYSQL_USER is set without MYSQL_PASSWORD; set MYSQL_PASSWORD (or MYSQL_PASSWORD_FILE)"
	fi
}

# sql_string VALUE: VALUE as a quoted SQL string literal (backslash escapes are on: see initial_sql).
sql_string() {
	local value="${1//\\/\\\\}"
	printf "'%s'" "${value//\'/\\\'}"
}

# sql_identifier NAME: NAME as a backquoted identifier.
sql_identifier() { printf "\`%s\`" "${1//\`/\`\`}"; }

# docker_process_sql [CLIENT OPTIONS...] < SQL: run SQL as root over the socket (also for sourced init scripts).
docker_process_sql() {
	MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --protocol=socket --socket="$SOCKET" -uroot --comments "$@"
}

install_system_tables() {
	log "initialising database files in $DATADIR"
	# "normal" root authentication: the server runs as mysql, so root cannot use unix_socket authentication.
	mariadb-install-db "$@" --datadir="$DATADIR" --rpm --skip-test-db \
		--auth-root-authentication-method=normal --cross-bootstrap --default-time-zone=SYSTEM >/dev/null
}

temp_server_start() {
	log "starting temporary server (socket only)"
	mariadbd "$@" --skip-networking --socket="$SOCKET" --default-time-zone=SYSTEM &
	TEMP_SERVER_PID=$!
	local deadline=$((SECONDS + START_TIMEOUT))
	until mariadb-admin --socket="$SOCKET" -uroot --silent ping >/dev/null 2>&1; do
		kill -0 "$TEMP_SERVER_PID" 2>/dev/null || die "temporary server exited during start; see the log above"
		((SECONDS < deadline)) || die "temporary server not ready after ${START_TIMEOUT}s; raise MARIADB_START_TIMEOUT"
		sleep 0.5
	done
}

temp_server_stop() {
	log "stopping temporary server"
	kill -TERM "$TEMP_SERVER_PID"
	wait "$TEMP_SERVER_PID" || die "temporary server did not shut down cleanly"
}

initial_sql() {
	printf '%s\n' \
		"SET @@SESSION.SQL_LOG_BIN=0;" \
		"SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');" \
		"DELETE FROM mysql.global_priv WHERE User = '';" \
		"ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
	if [[ -n "$MYSQL_ROOT_HOST" && "$MYSQL_ROOT_HOST" != localhost ]]; then
		printf '%s\n' \
			"CREATE USER 'root'@$(sql_string "$MYSQL_ROOT_HOST") IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");" \
			"GRANT ALL ON *.* TO 'root'@$(sql_string "$MYSQL_ROOT_HOST") WITH GRANT OPTION;"
	fi
	if [[ -n "$MYSQL_DATABASE" ]]; then
		printf '%s\n' "CREATE DATABASE IF NOT EXISTS $(sql_identifier "$MYSQL_DATABASE");"
	fi
	if [[ -n "$MYSQL_USER" ]]; then
		printf '%s\n' "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
		if [[ -n "$MYSQL_DATABASE" ]]; then
			printf '%s\n' "GRANT ALL ON $(sql_identifier "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
		fi
	fi
	printf '%s\n' "FLUSH PRIVILEGES;"
}

setup_accounts() {
	if [[ -n "$MYSQL_RANDOM_ROOT_PASSWORD" && -z "$MYSQL_ROOT_PASSWORD" ]]; then
		MYSQL_ROOT_PASSWORD="$(base64 <(head -c 24 /dev/urandom))"
		export MYSQL_ROOT_PASSWORD
		# Printed to the log only, like the official image, so the operator can read it once.
		printf 'GENERATED ROOT PASSWORD: %s\n' "$MYSQL_ROOT_PASSWORD"
	fi
	log "creating root password, database and user"
	# root has no password yet: an empty MYSQL_PWD logs in, and the SQL travels on stdin.
	initial_sql | MYSQL_PWD='' mariadb --protocol=socket --socket="$SOCKET" -uroot --database=mysql
}

run_init_files() {
	local file
	local -a database_option=()
	if [[ -n "$MYSQL_DATABASE" ]]; then
		database_option=(--database="$MYSQL_DATABASE")
	fi
	for file in "$INITDB_DIR"/*; do
		case "$file" in
		*.sh)
			if [[ -x "$file" ]]; then
				log "running $file"
				"$file"
			else
				log "sourcing $file"
				# shellcheck disable=SC1090 # the init scripts are the user's, unknown until run time
				. "$file"
			fi
			;;
		*.sql)
			log "running $file"
			docker_process_sql "${database_option[@]}" <"$file"
			;;
		*.sql.gz)
			log "running $file"
			gunzip -c "$file" | docker_process_sql "${database_option[@]}"
			;;
		"$INITDB_DIR/*") ;; # empty folder: the glob did not match
		*) warn "ignoring $file (not *.sh, *.sql or *.sql.gz)" ;;
		esac
	done
}

initialise() {
	verify_env
	install_system_tables "$@"
	temp_server_start "$@"
	setup_accounts
	run_init_files
	temp_server_stop
	log "init complete; ready for start up"
}

# True when the arguments only ask mariadbd for information (then nothing must be initialised).
wants_help() {
	local arg
	for arg; do
		case "$arg" in
		-'?' | --help | --print-defaults | -V | --version) return 0 ;;
		esac
	done
	return 1
}

main() {
	if [[ "${1:-}" == -* ]]; then
		set -- mariadbd "$@"
	fi
	if [[ "${1:-}" == mysqld ]]; then # the official mysql image's command name
		shift
		set -- mariadbd "$@"
	fi
	if [[ "${1:-}" != mariadbd ]] || wants_help "$@"; then
		exec "$@"
	fi
	shift
	setup_env
	if database_exists; then
		log "database already initialised in $DATADIR; skipping init"
	else
		initialise "$@"
	fi
	exec mariadbd "$@"
}

# Sourcing guard: `source` the file to reuse its functions (e.g. in tests) without starting a server.
is_sourced() {
	[[ "${#FUNCNAME[@]}" -ge 2 && "${FUNCNAME[0]}" == is_sourced && "${FUNCNAME[1]}" == source ]]
}

if ! is_sourced; then
	main "$@"
fi
