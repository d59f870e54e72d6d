#!/usr/bin/env bash
# Runs once, on first init of an empty data volume (official mysql image and the offline MariaDB
# image alike): lets the app user create and drop the `test_*` databases that pytest-django uses,
# so the test suite runs as the app user and never as root.
set -Eeuo pipefail

MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
GRANT ALL PRIVILEGES ON \`test\\_%\`.* TO '${MYSQL_USER}'@'%';
FLUSH PRIVILEGES;
SQL
