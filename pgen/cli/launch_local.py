r"""Starts N pgen processes on this machine, as a multi-host job would run them.

    python -m pgen.cli.launch_local --num_processes 2 --devices_per_process 2 -- \
        train --config configs/fashion_mnist_dcgan.py --workdir runs/fmnist

Each process gets `devices_per_process` CPU devices (XLA's host-platform device count),
gloo collectives and the coordinator address of process 0 on a free localhost port.
Output lines are prefixed with the process index. If one process fails, the others get
`--grace_s` seconds to stop by themselves (JAX's heartbeat makes them), then are killed;
the launcher exits with the first failure's code. SIGTERM/SIGINT are passed to all.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _relay(stream, prefix):
  for line in stream:
    sys.stdout.write(f"{prefix} {line}")
    sys.stdout.flush()


def launch(pgen_args, num_processes, devices_per_process=1, grace_s=60.0,
           heartbeat_timeout_s=20) -> int:
  """Runs the processes to completion; returns 0 or the first non-zero exit code."""
  address = f"127.0.0.1:{free_port()}"
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
  processes, relays = [], []
  for rank in range(num_processes):
    command = [sys.executable, "-m", "pgen", *pgen_args, f"--coordinator_address={address}",
               f"--num_processes={num_processes}", f"--process_id={rank}",
               f"--heartbeat_timeout_s={heartbeat_timeout_s}"]
    p = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    processes.append(p)
    relays.append(threading.Thread(target=_relay, args=(p.stdout, f"[p{rank}]"), daemon=True))
    relays[-1].start()

  def forward(signum, frame):
    del frame
    for p in processes:
      if p.poll() is None:
        p.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    failure, failed_at = 0, None
    while any(p.poll() is None for p in processes):
      for rank, p in enumerate(processes):
        if p.returncode not in (None, 0) and failed_at is None:
          failure, failed_at = p.returncode, time.time()
          print(f"[launch] process {rank} exited with {p.returncode}; waiting up to "
                f"{grace_s:.0f}s for the others", flush=True)
      if failed_at is not None and time.time() - failed_at > grace_s:
        for p in processes:
          if p.poll() is None:
            p.kill()
      time.sleep(0.2)
    for t in relays:
      t.join(timeout=5)
    codes = [p.returncode for p in processes]
    return failure or next((c for c in codes if c != 0), 0)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num_processes", type=int, required=True)
  parser.add_argument("--devices_per_process", type=int, default=1)
  parser.add_argument("--grace_s", type=float, default=60.0,
                      help="After one process fails, how long the others may take to stop.")
  parser.add_argument("--heartbeat_timeout_s", type=int, default=20)
  parser.add_argument("pgen_args", nargs=argparse.REMAINDER,
                      help="-- then the pgen command and its flags")
  args = parser.parse_args()
  pgen_args = args.pgen_args[1:] if args.pgen_args[:1] == ["--"] else args.pgen_args
  if not pgen_args:
    parser.error("give the pgen command after --, e.g. -- train --config ... --workdir ...")
  sys.exit(launch(pgen_args, args.num_processes, args.devices_per_process, args.grace_s,
                  args.heartbeat_timeout_s))


if __name__ == "__main__":
  main()
