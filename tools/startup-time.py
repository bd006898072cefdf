#!/usr/bin/env python3
"""Time from exec to a listening socket for `hearth`, and its RSS: on a fresh data directory
each run, or on DATA_DIR when given (kept; each run stops hearth cleanly, so every run after
the first starts on a sealed database).

usage: tools/startup-time.py target/release/hearth [RUNS] [DATA_DIR]   (binds 127.0.0.1:7930)
"""
import socket, subprocess, sys, tempfile, time, shutil

binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
given = sys.argv[3] if len(sys.argv) > 3 else None
times = []
for _ in range(runs):
    data = given or tempfile.mkdtemp(prefix="hearth-startup-")
    started = time.perf_counter()
    proc = subprocess.Popen([binary, "--data-dir", data, "--bind", "127.0.0.1:7930"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = started + 60
    while time.perf_counter() < deadline:
        try:
            socket.create_connection(("127.0.0.1", 7930), timeout=0.05).close()
            break
        except OSError:
            time.sleep(0.0005)
    times.append((time.perf_counter() - started) * 1000)
    with open(f"/proc/{proc.pid}/status") as status:
        rss = next(l for l in status if l.startswith("VmRSS")).split()[1]
    proc.terminate()
    proc.wait()
    if not given:
        shutil.rmtree(data)
times_sorted = sorted(times)
print("ms to listening socket:", " ".join(f"{t:.1f}" for t in times),
      f"| median {times_sorted[len(times) // 2]:.1f} | RSS {rss} KiB")
