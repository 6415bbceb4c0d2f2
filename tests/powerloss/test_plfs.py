#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Unit checks of tf-plfs, the power-loss file system (tests/powerloss/plfs.c):
what was synced survives a cut, what was not is lost, torn writes tear at
page granularity, truncates and renames follow the documented model, an
injected fsync failure behaves like Linux's (the data never reaches the disk),
armed cuts fire at the named event, and the quota gives ENOSPC.

Skips (exit 77, saying why) without root, /dev/fuse, fusermount3 or the
binary."""
import errno
import mmap
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plfs import SKIP, Plfs, PlfsError, mounted, unavailable  # noqa: E402

P = 4096


class PlfsTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-plfs-")
        self.fs = Plfs(os.path.join(self.root, "backing"), os.path.join(self.root, "mnt"),
                       os.path.join(self.root, "ctl"))
        self.fs.mount()

    def tearDown(self):
        self.fs.unmount()
        if mounted(self.fs.mnt):
            self.fail("still mounted")
        shutil.rmtree(self.root, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.fs.mnt, name)

    def write(self, name, data, offset=0, sync=False, flags=0):
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT | flags, 0o600)
        try:
            os.pwrite(fd, data, offset)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def backing(self, name):
        with open(os.path.join(self.fs.backing, name), "rb") as f:
            return f.read()

    def test_unsynced_lost_synced_kept(self):
        self.write("a", b"A" * 5000, sync=True)
        self.write("a", b"B" * 100, offset=5000)  # grows, not synced
        self.write("b", b"never synced")
        self.assertEqual(self.read("a"), b"A" * 5000 + b"B" * 100)  # readers see it
        self.assertEqual(self.backing("a"), b"A" * 5000)  # the disk does not
        dropped, kept = self.fs.cut()
        self.assertEqual((dropped, kept), (2, 0))  # a's page 1, b's page 0
        with self.assertRaises(OSError) as cm:
            self.read("a")
        self.assertEqual(cm.exception.errno, errno.EIO)  # dead after the cut
        self.fs.unmount()
        self.fs.mount()
        self.assertEqual(self.read("a"), b"A" * 5000)
        self.assertEqual(self.read("b"), b"")  # the create was durable, its data not

    def test_fdatasync_and_o_dsync(self):
        fd = os.open(self.path("c"), os.O_RDWR | os.O_CREAT, 0o600)
        os.write(fd, b"x" * 10)
        os.fdatasync(fd)
        os.write(fd, b"y" * 10)
        os.close(fd)
        self.write("d", b"dsync", flags=os.O_DSYNC)
        self.assertEqual(self.backing("d"), b"dsync")  # durable before write() returned
        self.fs.power_cycle()
        self.assertEqual(self.read("c"), b"x" * 10)
        self.assertEqual(self.read("d"), b"dsync")

    def test_torn_write(self):
        """A cut that tears the last unsynced write keeps some of its pages
        and never all; earlier unsynced writes are lost."""
        partial = 0
        for i in range(8):
            name = "t%d" % i
            self.write(name, b"o" * (8 * P), sync=True)
            self.write(name + "x", b"lost")
            self.write(name, b"n" * (8 * P))  # the last write: 8 pages
            self.fs.power_cycle("tear")
            data = self.read(name)
            self.assertEqual(len(data), 8 * P)
            pages = [data[j * P:(j + 1) * P] for j in range(8)]
            for pg in pages:
                self.assertIn(pg, (b"o" * P, b"n" * P))  # page-granular
            new = sum(pg == b"n" * P for pg in pages)
            self.assertLess(new, 8, "a torn write never survives whole")
            partial += 0 < new
            self.assertEqual(self.read(name + "x"), b"")
        self.assertGreater(partial, 0, "8 torn writes all lost every page")

    def test_cut_any(self):
        self.write("e", b"e" * (4 * P))
        self.fs.power_cycle("any 100")
        self.assertEqual(self.read("e"), b"e" * (4 * P))
        self.write("f", b"f" * (4 * P))
        self.fs.power_cycle("any 0")
        self.assertEqual(self.read("f"), b"")

    def test_truncate(self):
        self.write("g", b"g" * (3 * P), sync=True)
        os.truncate(self.path("g"), P + 10)  # not synced
        self.assertEqual(os.path.getsize(self.path("g")), P + 10)
        os.truncate(self.path("g"), 3 * P)  # extended again: the cut-off part reads as zeros
        self.assertEqual(self.read("g"), b"g" * (P + 10) + bytes(2 * P - 10))
        self.fs.power_cycle()
        self.assertEqual(self.read("g"), b"g" * (3 * P))  # the synced size came back
        fd = os.open(self.path("g"), os.O_RDWR)
        os.ftruncate(fd, 100)
        os.fsync(fd)
        os.close(fd)
        self.fs.power_cycle()
        self.assertEqual(self.read("g"), b"g" * 100)

    def test_rename_without_fsync_loses_the_data(self):
        self.write("final", b"old", sync=True)
        self.write("tmp", b"new")  # never synced
        os.rename(self.path("tmp"), self.path("final"))
        self.assertEqual(self.read("final"), b"new")
        self.fs.power_cycle()
        self.assertEqual(sorted(os.listdir(self.fs.mnt)), ["final"])  # the rename was durable
        self.assertEqual(self.read("final"), b"")  # its data was not

    def test_mmap_sees_unsynced_writes(self):
        fd = os.open(self.path("m"), os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(fd, b"1" * (2 * P), 0)
        m = mmap.mmap(fd, 2 * P, mmap.MAP_SHARED, mmap.PROT_READ)
        os.pwrite(fd, b"2" * 10, P)
        self.assertEqual(m[P:P + 11], b"2" * 10 + b"1")
        m.close()
        os.close(fd)

    def test_injected_eio_is_fsyncgate(self):
        self.fs.ctl("arm eio fsync h 1")
        fd = os.open(self.path("h"), os.O_RDWR | os.O_CREAT, 0o600)
        os.write(fd, b"doomed")
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.pread(fd, 6, 0), b"doomed")  # still readable
        os.fsync(fd)  # succeeds, but writes nothing
        os.close(fd)
        self.assertEqual(self.backing("h"), b"\0" * 6)
        self.fs.power_cycle()
        self.assertEqual(self.read("h"), b"\0" * 6)

    def test_armed_cuts(self):
        self.fs.ctl("arm cut-after fsync i 2")
        fd = os.open(self.path("i"), os.O_RDWR | os.O_CREAT, 0o600)
        os.write(fd, b"1")
        os.fsync(fd)
        os.pwrite(fd, b"2", 1)
        os.fsync(fd)  # the 2nd: succeeds, then the power goes
        with self.assertRaises(OSError):
            os.pwrite(fd, b"3", 2)
        os.close(fd)
        self.fs.unmount()
        self.fs.mount()
        self.assertEqual(self.read("i"), b"12")
        self.fs.ctl("arm cut-before fsync i 1")
        fd = os.open(self.path("i"), os.O_RDWR)
        os.pwrite(fd, b"3", 2)
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        os.close(fd)
        self.fs.unmount()
        self.fs.mount()
        self.assertEqual(self.read("i"), b"12")
        self.assertEqual(self.fs.stats()["cuts"], 0)  # a new mount counts afresh

    def test_quota(self):
        used = self.fs.stats()["used"]
        self.fs.ctl("quota %d" % (used + 3 * P))
        sv = os.statvfs(self.fs.mnt)
        self.assertLessEqual(sv.f_bavail * sv.f_frsize, 3 * P)
        self.write("q", b"q" * (2 * P))
        with self.assertRaises(OSError) as cm:
            self.write("q", b"q" * (2 * P), offset=2 * P)
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.fs.ctl("quota 0")
        self.write("q", b"q" * (2 * P), offset=2 * P)
        self.assertEqual(len(self.read("q")), 4 * P)

    def test_bad_commands_are_refused(self):
        for line in ("", "cut sideways", "arm eio write x 1", "arm cut-after fsync x 0",
                     "quota -1", "arm cut-after nothing x 1"):
            with self.assertRaises(PlfsError):
                self.fs.ctl(line)
        self.assertEqual(self.fs.stats()["dead"], 0)


if __name__ == "__main__":
    why = unavailable()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)
    probe_root = tempfile.mkdtemp(prefix="tf-plfs-probe-")
    try:
        probe = Plfs(*(os.path.join(probe_root, d) for d in ("b", "m", "ctl")))
        probe.mount()
        probe.unmount()
    except PlfsError as e:
        print("SKIP: cannot mount a FUSE file system here: %s" % e)
        sys.exit(SKIP)
    finally:
        shutil.rmtree(probe_root, ignore_errors=True)
    unittest.main(verbosity=2)
