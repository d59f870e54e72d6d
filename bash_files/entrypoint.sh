#!/usr/bin/env bash
# Container entrypoint for the dev, stage and prod images.
# Reads *_FILE secrets, waits (with a deadline) for the database, applies migrations and RELEASE_COMMANDS when the
# container runs a server (switch off with DJANGO_MIGRATE=false), then execs the command so that it
# is the process that receives SIGTERM. The command `release` does only the migrations and RELEASE_COMMANDS.
# Can be sourced (by qa.sh and tests) without running main.
set -Eeuo pipefail

log() { printf '%s entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# file_env VAR: VAR_FILE=/run/secrets/x sets VAR from that file, so secrets need not sit in the environment.
# shellcheck source=bash_files/file_env.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/file_env.sh"

require_whole_number() {
	local name="$1" value="$2"
	[[ "$value" =~ ^[0-9]+$ ]] || die "$name='$value' is not a whole number of seconds; fix it in .env or the environment"
}

# Whether the name resolves tells a network problem (a container recreated outside its network) from a
# database that is not listening.
name_status() {
	local host="$1" port="$2" address
	if address="$(getent hosts "$host")"; then
		printf '%s resolves to %s but nothing answers on port %s' "$host" "${address%% *}" "$port"
	else
		printf 'the name %s does not resolve' "$host"
	fi
}

# TCP only: the official images' temporary init server listens on a socket, never on TCP, so an
# open port means the real server. Compose's healthcheck gate comes first; this is the safety net.
wait_for_db() {
	local host="${DB_HOST:-db}" port="${DB_PORT:-3306}" timeout="${DB_WAIT_TIMEOUT:-60}"
	require_whole_number DB_WAIT_TIMEOUT "$timeout"
	local deadline=$((SECONDS + timeout))
	# shellcheck disable=SC2016 # $1 and $2 expand in the child shell, which gets host and port as arguments
	until timeout 2 bash -c ': >"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			die "database $host:$port not reachable after ${timeout}s (DB_WAIT_TIMEOUT): $(name_status "$host" "$port"); try: invoke down && invoke up"
		fi
		sleep 1
	done
	log "database $host:$port is reachable"
}

# Settings errors (no DJANGO_SECRET_KEY, DEBUG in prod, DB_PORT=abc) become one line, not a traceback.
check_settings() {
	python - <<'PY' || exit 1
import importlib, os, sys
from django.core.exceptions import ImproperlyConfigured
try:
    importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "django_site.settings"))
except ImproperlyConfigured as error:
    sys.exit(f"entrypoint: configuration error: {error}")
PY
}

# The gunicorn config validates its numbers (GUNICORN_WORKERS, PORT, ...): run it before any wait, so a
# typo is one line now instead of a failure after DB_WAIT_TIMEOUT.
check_gunicorn_config() {
	if [[ "${1:-}" == gunicorn && -r /etc/gunicorn.conf.py ]]; then
		python /etc/gunicorn.conf.py || exit 1
	fi
}

# RELEASE_COMMANDS ("createcachetable;clearsessions", from release-commands in [tool.lifecycle]): manage.py
# commands run after migrate, in order; the first that fails stops the container like a failed migration.
run_release_commands() {
	local -a commands words
	local command
	IFS=';' read -ra commands <<<"${RELEASE_COMMANDS:-}"
	for command in "${commands[@]}"; do
		read -ra words <<<"$command"
		((${#words[@]})) || continue
		log "release command: manage.py ${words[*]}"
		python manage.py "${words[@]}"
	done
}

# Once per deploy: migrate, then the release commands. The server path runs it at start (compose); the swarm's
# migrate job runs it alone as the command `release` (docker/stack.migrate.yaml), before the replicas update.
migrate_and_release() {
	python manage.py migrate --noinput
	run_release_commands
}

runs_server() {
	[[ "${1:-}" == gunicorn || " $* " == *" runserver "* ]]
}

# DEBUGPY=listen|wait (invoke up --stage dev --debug [--wait]): the dev server runs under debugpy, which
# listens on 5678 in the container (compose publishes it on 127.0.0.1 only). Without the autoreloader,
# whose child process a debugger would have to follow; `wait` starts the server once a client attaches.
exec_debugged() {
	local wait=()
	case "$DEBUGPY" in
	listen) ;;
	wait) wait=(--wait-for-client) ;;
	*) die "DEBUGPY='$DEBUGPY' must be listen or wait" ;;
	esac
	python -c 'import debugpy' 2>/dev/null || die "DEBUGPY is set but debugpy is not installed: only the dev image has it"
	[[ "${1:-}" == python* ]] && shift
	log "debugpy listening on 0.0.0.0:5678${wait[*]:+, waiting for a client before starting the server}"
	exec python -m debugpy --listen 0.0.0.0:5678 "${wait[@]}" "$@" --noreload
}

main() {
	file_env DJANGO_SECRET_KEY
	file_env DB_PASSWORD
	check_settings
	check_gunicorn_config "$@"
	if [[ "$*" == release ]]; then
		wait_for_db
		migrate_and_release
		log "release: migrated${RELEASE_COMMANDS:+, release commands run}"
		exit 0
	fi
	if runs_server "$@"; then
		wait_for_db
		if [[ "${DJANGO_MIGRATE:-true}" == true ]]; then
			migrate_and_release
		else
			log "DJANGO_MIGRATE=${DJANGO_MIGRATE}: skipping migrations"
		fi
	fi
	if [[ -n "${DEBUGPY:-}" && " $* " == *" runserver "* ]]; then
		exec_debugged "$@"
	fi
	exec "$@"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
