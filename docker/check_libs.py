"""Every compiled module of a virtualenv finds its shared libraries: `ldd` over each extension module (*.so).

Run at image build in runtime-deps, where only RUNTIME_PACKAGES are installed (no headers, no toolchain): a module
that links a library no package in the image provides would fail only at import, in production. One line per
missing library instead, naming the .so, the distribution it came with and the setting to add its package to;
exit status 1 stops the build. Usage: check_libs.py VENV. Standard library only (runs before any venv exists).
"""

import re
import subprocess
import sys
from pathlib import Path

SETTING = "runtime-packages in [tool.lifecycle] (RUNTIME_PACKAGES)"
# Debian packages of libraries that projects' dependencies link (trixie names); else the soname is named alone.
KNOWN_PACKAGES = {
    "libmariadb.so.3": "libmariadb3",
    "libmysqlclient.so.21": "libmysqlclient21",
    "libpq.so.5": "libpq5",
    "libcurl.so.4": "libcurl4t64",
    "libmagic.so.1": "libmagic1t64",
    "libjpeg.so.62": "libjpeg62-turbo",
    "libxml2.so.2": "libxml2",
    "libxslt.so.1": "libxslt1.1",
    "libffi.so.8": "libffi8",
    "libssl.so.3": "libssl3t64",
    "libldap.so.2": "libldap2",
    "libsasl2.so.2": "libsasl2-2",
}
_NOT_FOUND = re.compile(r"^\s*(\S+) => not found")


def owners(venv: Path) -> dict[Path, str]:
    """Installed file -> the distribution that installed it, from each *.dist-info/RECORD."""
    found: dict[Path, str] = {}
    for record in venv.glob("lib/python*/site-packages/*.dist-info/RECORD"):
        name = record.parent.name.rsplit("-", 1)[0]
        metadata = record.parent / "METADATA"
        if metadata.is_file():
            match = re.search(r"^Name: (.+)$", metadata.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
            name = match.group(1).strip() if match else name
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            path = line.rsplit(",", 2)[0]
            if path.endswith(".so") or ".so." in path:
                found[(record.parent.parent / path).resolve()] = name
    return found


def missing(module: Path) -> list[str]:
    result = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=False)
    return [match.group(1) for match in map(_NOT_FOUND.match, result.stdout.splitlines()) if match]


def problems(venv: Path) -> list[str]:
    by_file = owners(venv)
    lines = []
    for module in sorted(venv.rglob("*.so")):
        for library in missing(module):
            where = by_file.get(module.resolve(), "an unrecorded file")
            package = KNOWN_PACKAGES.get(library)
            add = f"add {package} to {SETTING}" if package else f"add the Debian package of {library} to {SETTING}"
            relative = module.relative_to(venv)
            lines.append(f"{library} (needed by {relative}, from {where}) is not in the image; {add}")
    return lines


def main(argv: list[str]) -> int:
    found = problems(Path(argv[1]))
    for line in found:
        print(f"missing shared library: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
