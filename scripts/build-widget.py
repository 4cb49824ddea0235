#!/usr/bin/env python3
"""Minifies widget/widget.js (the readable source) into the asset Herald serves.

    scripts/build-widget.py          write Sources/NotificationsService/Resources/widget.js
    scripts/build-widget.py --check  fail if the committed asset is not the minified source

Needs rjsmin from PyPI (scripts/requirements-test.txt). Prints the raw and gzipped sizes.
"""
import gzip
import os
import sys

import rjsmin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = os.path.join(ROOT, "widget", "widget.js")
ASSET = os.path.join(ROOT, "Sources", "NotificationsService", "Resources", "widget.js")
BUDGET = 6000  # bytes, gzipped


def build():
    with open(SOURCE) as f:
        source = f.read()
    header = "/* Herald widget. Source: widget/widget.js */\n"
    return header + rjsmin.jsmin(source) + "\n"


def main():
    minified = build()
    size = len(minified.encode())
    gz = len(gzip.compress(minified.encode(), compresslevel=9))
    print(f"widget.js: {size} bytes, {gz} bytes gzipped (budget {BUDGET})")
    if gz >= BUDGET:
        sys.exit(f"the widget is over its budget of {BUDGET} bytes gzipped")
    if "--check" in sys.argv:
        with open(ASSET) as f:
            if f.read() != minified:
                sys.exit("Sources/NotificationsService/Resources/widget.js is stale: run scripts/build-widget.py")
        return
    with open(ASSET, "w") as f:
        f.write(minified)


if __name__ == "__main__":
    main()
