"""Child processes for the framework tests: a training script, its exit, its signals.

A child runs a script written by the test, with the repository importable
and the framework settings of :mod:`tests.integrations.conftest`. A script
that should be interrupted prints ``READY`` once it is inside training and
then waits; :meth:`Child.interrupt` sends the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integrations.conftest import FRAMEWORK_ENVIRONMENT

WAIT = 180.0
"""Seconds a child may take (importing a framework on a busy 2-core machine is slow)."""

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Finished:
    """What a child left behind."""

    returncode: int
    stdout: str
    stderr: str

    def line(self, prefix: str) -> str:
        """The rest of the first stdout line starting with *prefix*."""
        for line in self.stdout.splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        pytest.fail(f"no {prefix!r} line in the child's output:\n{self.stdout}\n{self.stderr}")


class Child:
    """One training script running in its own Python process."""

    def __init__(self, script: str, directory: Path, *, name: str = "child") -> None:
        path = directory / f"{name}.py"
        path.write_text(textwrap.dedent(script))
        self._out = (directory / f"{name}.stdout").open("w+")
        self._err = (directory / f"{name}.stderr").open("w+")
        env = {**os.environ, **FRAMEWORK_ENVIRONMENT, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, str(path)],
            cwd=directory,
            env=env,
            stdout=self._out,
            stderr=self._err,
            text=True,
        )

    def _read(self) -> tuple[str, str]:
        self._out.flush()
        self._err.flush()
        self._out.seek(0)
        self._err.seek(0)
        return self._out.read(), self._err.read()

    def wait_for(self, marker: str = "READY") -> None:
        """Wait until the child printed *marker* (it is inside training)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            out, err = self._read()
            if marker in out:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"child exited ({self.proc.returncode}) early:\n{out}\n{err}")
            time.sleep(0.05)
        self.proc.kill()
        pytest.fail(f"child never printed {marker!r}:\n{self._read()}")

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Send *signum* once the child is inside training (Ctrl-C by default)."""
        self.wait_for()
        self.proc.send_signal(signum)

    def finish(self) -> Finished:
        """Wait for the child to exit; what it printed and its exit code."""
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"child still running after {WAIT} s:\n{self._read()}")
        out, err = self._read()
        self._out.close()
        self._err.close()
        return Finished(self.proc.returncode, out, err)
