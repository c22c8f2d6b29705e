"""Two `anonchat-cli --json` profiles register on a server and become friends (check-run.sh)."""
import json
import os
import secrets
import subprocess
import sys
import threading
import queue

cli, server, home = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(home, exist_ok=True)


class Client:
    def __init__(self, profile):
        env = dict(os.environ, ANONCHAT_HOME=home)
        self.p = subprocess.Popen([cli, "--json", "--profile", profile, "--server", server],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.backlog = []
        self.expect(lambda v: v.get("event") == "ready", "ready")

    def _read(self):
        for line in self.p.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass

    def expect(self, pred, what):
        for i, v in enumerate(self.backlog):
            if pred(v):
                return self.backlog.pop(i)
        while True:
            try:
                v = self.lines.get(timeout=30)
            except queue.Empty:
                sys.exit(f"timed out waiting for {what}; saw {self.backlog}")
            if pred(v):
                return v
            self.backlog.append(v)

    def ok(self, cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        r = self.expect(lambda v: v.get("reply") == cmd["cmd"], f"reply to {cmd['cmd']}")
        if not r.get("ok"):
            sys.exit(f"{cmd} failed: {r}")
        return r

    def quit(self):
        self.p.stdin.write('{"cmd": "quit"}\n')
        self.p.stdin.flush()
        self.p.wait(timeout=30)


names = [f"smoke{n}{secrets.token_hex(4)}" for n in ("a", "b")]
a, b = Client("smoke-a"), Client("smoke-b")
for c, n in ((a, names[0]), (b, names[1])):
    c.ok({"cmd": "register", "username": n})
    c.ok({"cmd": "connect"})
    c.expect(lambda v: v.get("event") == "connected", "connected")
a.ok({"cmd": "add_friend", "username": names[1]})
req = b.expect(lambda v: v.get("event") == "friend_request", "friend_request")
# An acceptance names the safety number the request showed (P8).
b.ok({"cmd": "accept_friend", "username": names[0], "safety_number": req["safety_number"]})
for c in (a, b):
    c.expect(lambda v: v.get("event") == "friend_added", "friend_added")
friends = a.ok({"cmd": "friends"})["friends"]
assert [f["username"] for f in friends] == [names[1]], friends
a.quit()
b.quit()
