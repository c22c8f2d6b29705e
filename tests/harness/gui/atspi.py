#!/usr/bin/python3
"""The running app's accessibility tree over AT-SPI (what screen readers see), for the tests.

    atspi.py PID controls            every control: JSON lines {role, name, showing}
    atspi.py PID press NAME SECONDS  waits until an enabled control is named NAME, then activates it
    atspi.py PID wait NAME SECONDS   waits until a showing control is named NAME
    atspi.py PID count NAME SECONDS MIN
                                     waits until the list named NAME has at least MIN items
    atspi.py PID length NAME SECONDS N
                                     waits until the field named NAME holds N characters (its
                                     length only: typed keys have landed)

Only the names of controls and lists are read, never the text of the page, so no chat content
passes through the app's processes for the test's sake.
"""
import json
import sys
import time

import pyatspi

CONTROLS = {
    "push button", "toggle button", "entry", "password text", "check box", "radio button",
    "link", "combo box", "menu item", "slider", "spin button", "text",
}
# Roles whose name comes only from a label, never from the content inside.
CONTAINERS = {"list", "list box", "log", "section", "panel", "landmark", "filler"}


def app_of(pid):
    desk = pyatspi.Registry.getDesktop(0)
    for i in range(desk.childCount):
        a = desk.getChildAtIndex(i)
        try:
            if a is not None and a.get_process_id() == pid:
                return a
        except Exception:
            continue
    return None


def walk(node, roles):
    """Nodes of the given roles, depth first; children of an unreadable node are skipped."""
    try:
        role = node.getRoleName()
        count = node.childCount
    except Exception:
        return
    if role in roles:
        yield node, role
    for i in range(count):
        try:
            child = node.getChildAtIndex(i)
        except Exception:
            continue
        if child is not None:
            yield from walk(child, roles)


def showing(node):
    st = node.getState()
    return st.contains(pyatspi.STATE_SHOWING) and st.contains(pyatspi.STATE_SENSITIVE)


def enabled(node):
    return node.getState().contains(pyatspi.STATE_SENSITIVE)


def until(seconds, find):
    deadline = time.monotonic() + seconds
    while True:
        app = app_of(PID)
        found = find(app) if app is not None else None
        if found is not None:
            return found
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def shown(name, seconds, in_view=True, focused=False):
    def find(app):
        for node, _ in walk(app, CONTROLS):
            if node.name == name and (showing(node) if in_view else enabled(node)):
                if focused and not node.getState().contains(pyatspi.STATE_FOCUSED):
                    continue
                return node
        return None
    node = until(seconds, find)
    if node is None:
        state = "had the focus" if focused else "showed"
        sys.exit(f"no control named {name!r} {state} within {seconds} s")
    return node


def press(name, seconds):
    # Scrolled out of view is fine (a user would scroll); hidden parts are not in the tree.
    shown(name, seconds, in_view=False).queryAction().doAction(0)


def count(name, seconds, least):
    def find(app):
        # WebKit exposes a labelled <ol aria-live> as a section or panel rather than a list.
        for node, _ in walk(app, CONTAINERS):
            if node.name == name and node.childCount >= least:
                return node.childCount
        return None
    n = until(seconds, find)
    if n is None:
        app = app_of(PID)
        seen = [(r, x.name, x.childCount) for x, r in walk(app, CONTAINERS) if x.name] if app else []
        sys.exit(f"the list {name!r} did not reach {least} items within {seconds} s; saw {seen}")
    print(n)


def length(name, seconds, n):
    def find(app):
        for node, _ in walk(app, CONTROLS):
            if node.name == name:
                try:
                    if node.queryText().characterCount == n:
                        return n
                except NotImplementedError:
                    continue
        return None
    if until(seconds, find) is None:
        sys.exit(f"the field {name!r} did not hold {n} characters within {seconds} s")


PID = int(sys.argv[1])
what = sys.argv[2]
if what == "controls":
    app = until(10, lambda a: a)
    if app is None:
        sys.exit(f"no application with pid {PID} on the accessibility bus")
    for node, role in walk(app, CONTROLS):
        print(json.dumps({"role": role, "name": node.name, "showing": showing(node)}))
elif what == "press":
    press(sys.argv[3], float(sys.argv[4]))
elif what == "wait":
    shown(sys.argv[3], float(sys.argv[4]))
elif what == "focused":
    shown(sys.argv[3], float(sys.argv[4]), focused=True)
elif what == "length":
    length(sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
elif what == "count":
    count(sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
else:
    sys.exit(f"unknown command {what}")
