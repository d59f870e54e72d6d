#!/usr/bin/env bash
# Entrypoint of the test-qa image: waits for the database, runs `manage.py check`, then the project's own tests
# under coverage (over CODE) with TEST_RUNNER: pytest (the project's pytest-django configuration; JUnit XML in
# REPORTS_DIR) or django (`manage.py test`). The project runs under the settings layer over SETTINGS_TEST, else
# SETTINGS_DEV (docs/adopt.md). Arguments go to the runner (none: TEST_ARGS, [tool.lifecycle] test-args); the exit
# status is the runner's.
set -Eeuo pipefail

# shellcheck source=bash_files/entrypoint.sh
source "$(dirname "$(readlink -f "$0")")/entrypoint.sh"

# The packages of CODE (its manage.py and other files are not measured), comma-separated for coverage's --source.
coverage_sources() {
	local -a sources=() paths=()
	local path
	read -ra paths <<<"${CODE:-}"
	for path in "${paths[@]}"; do
		[[ -d "$path" ]] && sources+=("${path%/}")
	done
	((${#sources[@]})) || sources=(.)
	local IFS=,
	printf '%s' "${sources[*]}"
}

run_tests() {
	local reports="${REPORTS_DIR:-/reports}" status=0 sources
	mkdir -p "$reports"
	sources="$(coverage_sources)"
	# Coverage's data file lives with the reports: the code folder may be read-only.
	export COVERAGE_FILE="$reports/.coverage"
	case "${TEST_RUNNER:-pytest}" in
	pytest)
		# The code folder is not writable for the host UID the tests run as: pytest's cache goes to /tmp.
		coverage run --source="$sources" -m pytest --junitxml="$reports/junit.xml" \
			-o cache_dir="${TMPDIR:-/tmp}/pytest-cache" "$@" || status=$?
		;;
	django)
		coverage run --source="$sources" manage.py test --noinput "$@" || status=$?
		;;
	*) die "TEST_RUNNER='${TEST_RUNNER}' must be pytest or django; set test-runner in [tool.lifecycle]" ;;
	esac
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
	export LIFECYCLE_PROJECT_SETTINGS="${LIFECYCLE_TEST_SETTINGS:-${LIFECYCLE_PROJECT_SETTINGS:-}}"
	file_env DJANGO_SECRET_KEY
	file_env DB_PASSWORD
	check_settings
	wait_for_db
	python manage.py check
	if (($# == 0)) && [[ -n "${TEST_ARGS:-}" ]]; then
		local -a defaults
		read -ra defaults <<<"$TEST_ARGS"
		set -- "${defaults[@]}"
	fi
	if [[ -n "${QA_CHANGED:-}" ]]; then
		run_changed "$@"
	else
		run_tests "$@"
	fi
}

main_qa "$@"
