#!/bin/sh
# Copies, from the unpacked code in SOURCE to TARGET, the files collectstatic's output can depend on:
# every file that is not Python, plus the Python that Django imports to find static files (manage.py,
# the settings, split settings packages (settings/*.py: Wagtail's base, dev, production), package __init__ and apps
# modules). A view or model change leaves TARGET identical,
# so the image build's `static` stage is a cache hit. A project whose settings import another module of
# its own must add it here (collectstatic then fails loudly, never silently stale).
# Usage: static_inputs.sh SOURCE TARGET  (POSIX sh: runs in the base image, before any venv exists)
set -eu

main() {
	source_dir="$1" target_dir="$2"
	mkdir -p "$target_dir"
	cd "$source_dir"
	find . -type d -name __pycache__ -prune -o -type f \
		\( ! -name '*.py' -o -name manage.py -o -name settings.py -o -path '*/settings/*.py' -o -name __init__.py \
		-o -name apps.py \) \
		-print | tar -cf - -T - | tar -xf - -C "$target_dir"
}

main "$@"
