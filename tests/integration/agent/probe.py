#!/usr/bin/python3
"""Write probe for the agent tests and bench/agent: one thread per node INSERTs a row every
50 ms over its own connection (reconnecting after errors), recording every attempt.

  probe.py run OUT STOPFILE PASSWORD HOST...   runs until STOPFILE exists
  probe.py report OUT [T0_MS]                  prints the analysis as key=value lines

OUT lines: "<start_ms> <end_ms> <host> ok|err". Analysis:
  acked           number of acknowledged writes
  max_gap_ms      longest time without any acknowledged write (after T0_MS if given):
                  the unavailability a client writing every 50 ms saw
  overlap         1 if two hosts accepted writes in overlapping periods (split brain:
                  host A acknowledged a write after host B had already started to)
  hosts           the hosts that acknowledged writes, in order of their first write
Each connection sets tcp_user_timeout and a statement timeout so a host cut off by a
partition cannot stall the probe."""
import sys
import threading
import time

def now_ms():
    return int(time.time() * 1000)

def worker(host, password, stop, out, lock):
    import psycopg2
    conn = None
    while not stop.is_set():
        t0 = now_ms()
        ok = False
        try:
            if conn is None:
                conn = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                                        password=password, connect_timeout=1,
                                        tcp_user_timeout=1000, keepalives=1,
                                        keepalives_idle=1, keepalives_interval=1,
                                        keepalives_count=1, application_name="probe",
                                        options="-c statement_timeout=1000 -c log_min_messages=panic -c log_min_error_statement=panic")
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("INSERT INTO probe(host, t) VALUES (%s, %s)", (host, t0))
            ok = True
        except Exception:
            try:
                if conn is not None:
                    conn.close()
            except Exception:
                pass
            conn = None
        t1 = now_ms()
        with lock:
            out.write("%d %d %s %s\n" % (t0, t1, host, "ok" if ok else "err"))
            out.flush()
        time.sleep(max(0.0, 0.05 - (t1 - t0) / 1000.0))

def run(path, stopfile, password, hosts):
    import os
    stop = threading.Event()
    lock = threading.Lock()
    with open(path, "w") as out:
        ts = [threading.Thread(target=worker, args=(h, password, stop, out, lock), daemon=True)
              for h in hosts]
        for t in ts:
            t.start()
        while not os.path.exists(stopfile):
            time.sleep(0.05)
        stop.set()
        for t in ts:
            t.join(5)

def report(path, t0=0):
    acks = []
    for line in open(path):
        p = line.split()
        if len(p) == 4 and p[3] == "ok":
            acks.append((int(p[0]), int(p[1]), p[2]))
    acks.sort(key=lambda a: a[1])
    after = [a for a in acks if a[1] >= t0]
    gap = 0
    prev = t0 if t0 else (after[0][1] if after else 0)
    for a in after:
        gap = max(gap, a[1] - prev)
        prev = a[1]
    # per host: first acknowledged write (its end) and last one (its start)
    first_end, last_start = {}, {}
    order = []
    for s, e, h in acks:
        if h not in first_end:
            first_end[h] = e
            order.append(h)
        last_start[h] = max(last_start.get(h, s), s)
    overlap = 0
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            # b acknowledged later; a write that a began after b's first commit was
            # acknowledged proves both accepted writes at the same time
            if last_start[a] > first_end[b]:
                overlap = 1
    print("acked=%d" % len(acks))
    print("max_gap_ms=%d" % gap)
    print("overlap=%d" % overlap)
    print("hosts=%s" % ",".join(order))
    for h in order:
        print("span_%s=%d..%d" % (h, first_end[h], last_start[h]))

if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        report(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
