#!/usr/bin/env bash
# Runs once, on first init of an empty data volume (official mysql image and the offline MariaDB
# image alike). Where tests run (DB_TEST_DATABASES=yes: the throwaway database of `invoke qa`, and
# `invoke up --stage dev`) it lets the app user create and drop the `test_*` databases that
# pytest-django uses, so the tests run as the app user and never as root. A volume first made for
# stage or prod (DB_TEST_DATABASES=no, the default) gets no such grant.
set -Eeuo pipefail

die() {
	printf '10-test-database-grants: %s\n' "$*" >&2
	exit 1
}

# A single-quoted SQL string literal for any value: backslashes and quotes doubled, so a user name
# holding ' or \ stays a name (the server runs without NO_BACKSLASH_ESCAPES at init).
sql_string() {
	local value=${1//\\/\\\\}
	printf "'%s'" "${value//\'/\'\'}"
}

main() {
	case "${DB_TEST_DATABASES:-no}" in
	yes) ;;
	no)
		printf '10-test-database-grants: no test databases for this volume (DB_TEST_DATABASES=no)\n'
		return 0
		;;
	*) die "DB_TEST_DATABASES must be yes or no" ;;
	esac
	[[ -n "${MYSQL_USER:-}" ]] || die "MYSQL_USER is not set"
	local user
	user=$(sql_string "$MYSQL_USER")
	# `test\_%`: the underscore escaped, so the grant covers test_* and not e.g. `testing`; the SQL goes
	# on stdin, the password in the environment.
	MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
GRANT ALL PRIVILEGES ON \`test\\_%\`.* TO ${user}@'%';
SQL
}

main "$@"
