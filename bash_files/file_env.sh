#!/usr/bin/env bash
# The one *_FILE rule, sourced by bash_files/entrypoint.sh (dev, test-qa, stage, prod) and by the offline
# MariaDB image's entrypoint and health check, so every image reads secrets from files the same way.
# The sourcing script defines die MESSAGE (log one line, exit 1).

# file_env VAR [DEFAULT]: export VAR from itself, or else from the file VAR_FILE names, or else DEFAULT
# (empty). Both set is refused, as the official mysql and postgres images refuse it: which one would win
# is a guess the operator should not have to make. VAR_FILE is unset afterwards.
file_env() {
	local var="$1" file_var="${1}_FILE" value="${2:-}"
	if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
		die "both $var and $file_var are set; set only one of them"
	fi
	if [[ -n "${!var:-}" ]]; then
		value="${!var}"
	elif [[ -n "${!file_var:-}" ]]; then
		[[ -r "${!file_var}" ]] || die "$file_var=${!file_var} is not a readable file"
		value="$(<"${!file_var}")"
	fi
	export "$var"="$value"
	unset "$file_var"
}
