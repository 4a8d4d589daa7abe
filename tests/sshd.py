"""A real OpenSSH server on loopback and an `ssh -N -D` tunnel through it: the SOCKS vantage a department
runs on a provider's line (Debian's openssh-server and openssh-client). Everything stays on 127.0.0.1: the
tunnel only ever connects to the test's own loopback servers."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.loopback_servers import closed_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")


def available() -> str:
    """Why the tunnel cannot be made here, or "" when it can."""
    if not (SSHD and SSH and SSH_KEYGEN):
        return "OpenSSH not installed (apt-get install openssh-server openssh-client)"
    return ""


def wait_for_port(port: int, seconds: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextlib.contextmanager
def sshd(workdir: Path, permit_open: str = "any") -> Iterator[tuple[int, Path]]:
    """An sshd on 127.0.0.1 with its own config, host key and one authorized client key; yields (port,
    client key file). `permit_open`: the sshd_config PermitOpen of the vantage box. Stopped at the end."""
    assert SSHD and SSH_KEYGEN
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (workdir / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    os.chmod(workdir / "authorized_keys", 0o600)
    port = closed_port()  # a loopback port nothing listens on yet: sshd's
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\nAllowTcpForwarding yes\n"
        f"PermitOpen {permit_open}\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc=proc)
        yield port, client_key
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def start_tunnel(ssh_port: int, client_key: Path, socks_port: int) -> subprocess.Popen[bytes]:
    """`ssh -N -D 127.0.0.1:PORT` as the README recommends; returns once the SOCKS port listens."""
    assert SSH
    proc = subprocess.Popen(
        [SSH, "-N", "-D", f"127.0.0.1:{socks_port}", "-i", str(client_key), "-p", str(ssh_port),
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2",
         "-o", "LogLevel=ERROR", f"{getpass.getuser()}@127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    wait_for_port(socks_port, proc=proc)
    return proc
