#!/bin/sh
# The Debian half of the release gate (lifecycle/vulns.py): run inside the image about to be released, as root in
# a throw-away container, it lists the packages with a pending Debian security update, one "package installed
# candidate" a line. It reads only the security suite of the image's own release ($1 is the security mirror) into a
# folder of its own, so nothing else of the image's apt state counts. Exit status: 0 with the list (empty: none
# pending), non-zero when the mirror could not be read (the gate then says so instead of passing).
set -eu

lists=/tmp/lifecycle-security

apt_get() {
	apt-get -q -o Dir::Etc::SourceList="$lists/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$lists/lists" -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

main() {
	mirror="$1"
	# shellcheck source=/dev/null  # the image's own os-release, for VERSION_CODENAME
	. /etc/os-release
	mkdir -p "$lists/lists/partial"
	printf 'deb %s %s-security main\n' "$mirror" "$VERSION_CODENAME" >"$lists/sources.list"
	apt_get --error-on=any update >/dev/null
	plan="$(apt_get --simulate dist-upgrade)"
	printf '%s\n' "$plan" | sed -n 's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\) .*/\1 \2 \3/p'
}

main "$@"
