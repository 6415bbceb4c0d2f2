# SPDX-License-Identifier: MIT
"""Python side of tf-plfs (tests/powerloss/plfs.c): mount one on a backing
directory, send it commands, cut the power, unmount and mount again.

Standard library only.  The binary comes from TF_PLFS (as ctest sets it).
"""
import os
import shutil
import socket
import subprocess
import time

PLFS = os.environ.get("TF_PLFS", "")
SKIP = 77  # ctest SKIP_RETURN_CODE


def unavailable():
    """Why tf-plfs cannot run here (a text), or None if it can."""
    if not PLFS or not os.path.exists(PLFS):
        return "tf-plfs was not built (libfuse3-dev missing at configure time)"
    if os.geteuid() != 0:
        return "not root (mounting FUSE file systems needs it here)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3)"
    return None


class PlfsError(Exception):
    pass


def mounted(path):
    """True if a file system is mounted on path.  Read from the mount
    table: os.path.ismount stats the mount point, which fails (EIO) once
    the power is cut."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].encode().decode("unicode_escape") == path:
                return True
    return False


class Plfs:
    """One tf-plfs mount of `backing` on `mnt`, controlled through `ctl`.
    mount() and unmount() may be called again and again: each mount is a
    new process on what the backing directory holds (power back on)."""

    def __init__(self, backing, mnt, ctl, log_path=None, seed=1):
        self.backing, self.mnt, self.ctl_path = backing, mnt, ctl
        self.log_path = log_path or (ctl + ".log")
        self.seed = seed
        self.proc = None
        self.lazy_unmounts = 0
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mnt, exist_ok=True)

    def mount(self, quota=0, timeout=10.0):
        if self.proc is not None:
            raise PlfsError("already mounted")
        cmd = [PLFS, "--backing", self.backing, "--ctl", self.ctl_path, "--seed",
               str(self.seed)]
        if quota:
            cmd += ["--quota", str(quota)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd + [self.mnt], stdout=log, stderr=log)
        self.seed += 1  # each power-on draws afresh, reproducibly
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise PlfsError("tf-plfs exited while mounting; see %s" % self.log_path)
            if mounted(self.mnt):
                try:
                    if self.ctl("ping") == "ok":
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        self.unmount()
        raise PlfsError("tf-plfs did not come up within %.0fs; see %s" % (timeout,
                                                                         self.log_path))

    def ctl(self, line, timeout=10.0):
        """Sends one command; returns the reply line (PlfsError for 'err')."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.ctl_path)
            s.sendall(line.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(512)
                if not chunk:
                    break
                buf += chunk
        reply = buf.decode().strip()
        if not reply.startswith("ok"):
            raise PlfsError("%s: %s" % (line, reply))
        return reply

    def stats(self):
        return {k: int(v) for k, v in (kv.split("=") for kv in self.ctl("stats").split()[1:])}

    def cut(self, mode="all"):
        """Power loss now; returns (dropped, kept) pages."""
        r = dict(kv.split("=") for kv in self.ctl("cut " + mode).split()[1:])
        return int(r["dropped"]), int(r["kept"])

    def unmount(self, busy_timeout=3.0, exit_timeout=5.0):
        """Unmounts and waits for the process.  A mount still busy after
        busy_timeout seconds (a process of the test still inside it) is
        detached lazily (counted in lazy_unmounts): the old tf-plfs, dead
        since the cut, answers EIO to whatever still holds it, and is
        killed if it has not exited after exit_timeout seconds."""
        if self.proc is None:
            return
        deadline = time.monotonic() + busy_timeout
        while mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode == 0 or not mounted(self.mnt):
                break
            if time.monotonic() >= deadline:
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
                self.lazy_unmounts += 1
                break
            time.sleep(0.05)
        try:
            self.proc.wait(exit_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def power_cycle(self, mode="all", before_remount=None):
        """Cut, unmount, (before_remount()), mount again."""
        if self.proc is not None and not self.stats()["dead"]:
            self.cut(mode)
        if before_remount is not None:
            before_remount()
        self.unmount()
        self.mount()
