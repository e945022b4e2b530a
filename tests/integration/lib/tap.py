"""TAP for the Python integration tests: one plan and one count per process.

ok() prints `ok N - name` or `not ok N - name` with up to 30 lines of detail as comments, and
returns the condition; done() prints the plan and returns the exit status (1 if anything failed).
"""

n = 0
failed = 0


def ok(cond, name, detail=""):
    global n, failed
    n += 1
    if cond:
        print("ok %d - %s" % (n, name), flush=True)
    else:
        failed += 1
        print("not ok %d - %s" % (n, name), flush=True)
        for line in str(detail).splitlines()[:30]:
            print("#   " + line, flush=True)
    return cond


def done():
    print("1..%d" % n, flush=True)
    return 1 if failed else 0
