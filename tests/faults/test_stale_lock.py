"""The workdir lock: a SIGKILLed run's lock is taken over with a log line naming it; a live
run's lock is refused with its owner."""

import os
import signal
import subprocess
import sys

import pytest

from pgen.training import run_record

HOLD = """
import sys, time
from pgen.training import run_record
with run_record.workdir_lock(sys.argv[1]):
  print("locked", flush=True)
  time.sleep(600)
"""


def _holder(workdir: str) -> subprocess.Popen:
  process = subprocess.Popen([sys.executable, "-c", HOLD, workdir], stdout=subprocess.PIPE,
                             text=True)
  assert process.stdout.readline().strip() == "locked"
  return process


def test_a_live_run_s_lock_is_refused_and_a_killed_run_s_taken_over(tmp_path, caplog):
  workdir = str(tmp_path / "run")
  holder = _holder(workdir)
  try:
    with pytest.raises(run_record.WorkdirBusyError, match=f"Another pgen run \\(pid {holder.pid} "):
      with run_record.workdir_lock(workdir):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with run_record.workdir_lock(workdir):
    assert f"Took over the lock of {workdir}/pgen.lock: a run (pid {holder.pid} " in caplog.text
  caplog.clear()
  with run_record.workdir_lock(workdir):  # Released cleanly last time: nothing to take over.
    assert "Took over" not in caplog.text
  assert os.path.getsize(os.path.join(workdir, "pgen.lock")) == 0
