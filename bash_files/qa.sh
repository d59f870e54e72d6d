#!/usr/bin/env bash
# Entrypoint of the test-qa image: waits for the database, runs `manage.py check`, then pytest under
# coverage with JUnit XML and coverage reports in REPORTS_DIR. Arguments go to pytest; the exit
# status is pytest's.
set -Eeuo pipefail

# shellcheck source=bash_files/entrypoint.sh
source "$(dirname "$(readlink -f "$0")")/entrypoint.sh"

run_tests() {
	local reports="${REPORTS_DIR:-/reports}" status=0
	mkdir -p "$reports"
	# Coverage's data file lives with the reports: the code folder may be read-only.
	export COVERAGE_FILE="$reports/.coverage"
	# The code folder is not writable for the host UID the tests run as: pytest's cache goes to /tmp.
	coverage run --source=django_site -m pytest tests/site --junitxml="$reports/junit.xml" \
		-o cache_dir="${TMPDIR:-/tmp}/pytest-cache" "$@" || status=$?
	coverage xml -q -o "$reports/coverage.xml" || log "warning: no coverage report"
	coverage report --skip-empty || true
	return "$status"
}

run_changed() {
	# invoke qa --changed (lifecycle/testmon.py): pytest-testmon with its data on the checkout's volume; QA_CHANGED is
	# the hash of the dependencies and settings, and a new one drops the data, so the whole suite runs.
	local reports="${REPORTS_DIR:-/reports}" data="${TESTMON_DIR:-/testmon}" status=0
	mkdir -p "$reports"
	export TESTMON_DATAFILE="$data/.testmondata"
	if [[ "$(cat "$data/inputs-key" 2>/dev/null || true)" != "$QA_CHANGED" ]]; then
		log "qa --changed: no earlier run with these dependencies and settings: the whole suite runs"
		rm -f "$TESTMON_DATAFILE"
	fi
	pytest tests/site --testmon --junitxml="$reports/junit.xml" -o cache_dir="${TMPDIR:-/tmp}/pytest-cache" "$@" ||
		status=$?
	printf '%s\n' "$QA_CHANGED" >"$data/inputs-key"
	if ((status == 5)); then # pytest: no test collected or selected
		log "qa --changed: no test is affected by what changed since the last run"
		status=0
	fi
	return "$status"
}

main_qa() {
	file_env DJANGO_SECRET_KEY
	file_env DB_PASSWORD
	check_settings
	wait_for_db
	python manage.py check
	if [[ -n "${QA_CHANGED:-}" ]]; then
		run_changed "$@"
	else
		run_tests "$@"
	fi
}

main_qa "$@"
