"""A real OpenLDAP server for the institution sign-in tests: Debian's slapd on a loopback port.

``slapd`` (session-scoped) writes a slapd.conf and an empty MDB database into a temporary directory,
starts ``slapd -h ldap://127.0.0.1:<free port>/ -f slapd.conf -d 0`` in the foreground as a child
process, loads the entries of ``PEOPLE`` through ldap3 as the directory's root, and stops the server at
the end of the session. Without slapd the tests skip, naming the package; under CI (``CI=true``) they
fail, so a machine that lost the package cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

SLAPD = os.environ.get("PATRONAGE_SLAPD", "/usr/sbin/slapd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SUFFIX = "dc=example,dc=edu"
PEOPLE_BASE = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"  # a throwaway server's password
SEARCH_DN = f"cn=portal,{SUFFIX}"
SEARCH_PASSWORD = "portal-search-secret"

# (uid, employeeNumber, password): the people of the test directory.
PEOPLE = (
    ("ada", "E-1001", "analytical-engine-1843"),
    ("grace", "E-1002", "cobol-compiler-1959"),
    # Whose login name is another patron's Person-ID: binding as them must not open that account.
    ("E-1003", "E-9999", "mallory-password-77"),
    ("nobadge", "", "no-institution-id-1"),
)

CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
pidfile {run}/slapd.pid
modulepath {modules}
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {run}/data
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


@dataclass(frozen=True)
class Directory:
    uri: str
    port: int


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"LDAP tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    # Start-up, not a test's timing: poll until slapd accepts connections, or give up after 20 s.
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(
                f"slapd exited with {process.returncode}: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("slapd did not start listening within 20 seconds")


def _load(uri: str) -> None:
    from ldap3 import Connection, Server

    with Connection(Server(uri), user=ROOT_DN, password=ROOT_PASSWORD, auto_bind=True) as root:
        root.add(SUFFIX, ["dcObject", "organization"], {"o": "Example University", "dc": "example"})
        root.add(PEOPLE_BASE, ["organizationalUnit"], {"ou": "people"})
        root.add(SEARCH_DN, ["organizationalRole", "simpleSecurityObject"], {"userPassword": SEARCH_PASSWORD})
        for uid, number, password in PEOPLE:
            attributes = {"cn": uid, "sn": uid, "uid": uid, "userPassword": password}
            if number:
                attributes["employeeNumber"] = number
            ok = root.add(f"uid={uid},{PEOPLE_BASE}", ["inetOrgPerson"], attributes)
            if not ok:
                raise RuntimeError(f"could not add {uid}: {root.result}")


@pytest.fixture(scope="session")
def slapd() -> Iterator[Directory]:
    if not (os.path.exists(SLAPD) and (SCHEMA_DIR / "inetorgperson.schema").exists()):
        _unavailable(f"no slapd at {SLAPD}; install Debian's packages: apt-get install slapd ldap-utils")
    run = Path(tempfile.mkdtemp(prefix="patronage-slapd-"))
    (run / "data").mkdir()
    conf = run / "slapd.conf"
    conf.write_text(
        CONFIG.format(
            schema=SCHEMA_DIR,
            run=run,
            modules=MODULE_DIR,
            suffix=SUFFIX,
            root_dn=ROOT_DN,
            root_password=ROOT_PASSWORD,
        )
    )
    port = free_port()
    uri = f"ldap://127.0.0.1:{port}/"
    # -d 0 keeps slapd in the foreground (a child we can stop) without debug output.
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [SLAPD, "-h", uri, "-f", str(conf), "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_until_listening(port, process)
        _load(uri.rstrip("/"))
        yield Directory(uri=uri.rstrip("/"), port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An address that accepts TCP connections and never answers: a directory that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
