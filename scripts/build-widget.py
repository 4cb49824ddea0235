#!/usr/bin/env python3
"""Minifies widget/widget.js and widget/push-optin.js (the readable sources) into the assets Herald serves.

    scripts/build-widget.py          write Sources/NotificationsService/Resources/widget.js and push-optin.js
    scripts/build-widget.py --check  fail if a committed asset is not its minified source, or over its budget

Needs rjsmin from PyPI (scripts/requirements-test.txt). Prints the raw and gzipped sizes.
"""
import gzip
import os
import sys

import rjsmin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# name: budget in bytes, gzipped. The push opt-in is loaded only on sites that offer push, after the widget.
SCRIPTS = {"widget.js": 6000, "push-optin.js": 2500}


def source_path(name):
    return os.path.join(ROOT, "widget", name)


def asset_path(name):
    return os.path.join(ROOT, "Sources", "NotificationsService", "Resources", name)


def tokens(js):
    """Splits minified JavaScript into (kind, text) tokens: enough to tell identifiers from strings, regular
    expressions and property names. The widget uses no template literals (checked below)."""
    out, i, n = [], 0, len(js)
    while i < n:
        c = js[i]
        if c in "'\"":
            j = i + 1
            while js[j] != c:
                j += 2 if js[j] == "\\" else 1
            out.append(("str", js[i:j + 1]))
            i = j + 1
        elif c == "`":
            raise SystemExit("widget.js: template literals are not supported by the build's renamer")
        elif c == "/" and regex_may_start(out):
            j, klass = i + 1, False
            while klass or js[j] != "/":
                if js[j] == "\\":
                    j += 1
                elif js[j] == "[":
                    klass = True
                elif js[j] == "]":
                    klass = False
                j += 1
            j += 1
            while j < n and js[j].isalpha():
                j += 1
            out.append(("re", js[i:j]))
            i = j
        elif c.isalpha() or c in "_$":
            j = i
            while j < n and (js[j].isalnum() or js[j] in "_$"):
                j += 1
            out.append(("id", js[i:j]))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (js[j].isalnum() or js[j] == "."):
                j += 1
            out.append(("num", js[i:j]))
            i = j
        else:
            out.append(("p", c))
            i += 1
    return out


def regex_may_start(previous):
    significant = [t for t in previous if t[1].strip()]
    if not significant:
        return True
    kind, text = significant[-1]
    return (kind == "p" and text in "(,=:[!&|?{};+-*%<>~^") or (kind == "id" and text in ("return", "typeof"))


def rename_locals(js):
    """Shortens the widget's own function, variable and parameter names (never property names, strings or
    globals): a name is renamed only if it is declared here and never used after a '.' or before a ':'."""
    toks = tokens(js)
    declared = set()
    for pos, (kind, text) in enumerate(toks):
        if kind != "id":
            continue
        prev = next((toks[q] for q in range(pos - 1, -1, -1) if toks[q][1].strip()), ("", ""))
        if prev[1] in ("function", "var"):
            declared.add(text)
    # Parameters: identifiers inside the parentheses after `function name` or before `=>`, and `x =>`.
    for pos, (kind, text) in enumerate(toks):
        if kind == "p" and text == "(" and pos > 0:
            before = [t for t in toks[max(0, pos - 3):pos] if t[1].strip()]
            depth, q, inner = 0, pos, []
            while q < len(toks):
                if toks[q][1] == "(":
                    depth += 1
                elif toks[q][1] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                elif depth == 1 and toks[q][0] == "id":
                    inner.append(toks[q][1])
                q += 1
            after = "".join(t[1] for t in toks[q + 1:q + 3])
            is_function = any(t[1] == "function" for t in before)
            if is_function or after.startswith("=>"):
                declared.update(inner)
        if kind == "id" and "".join(t[1] for t in toks[pos + 1:pos + 3]).startswith("=>"):
            declared.add(text)
    keywords = {"function", "var", "return", "if", "else", "for", "in", "of", "new", "typeof", "try", "catch", "while", "null",
                "true", "false", "undefined", "this", "void", "delete", "instanceof", "break", "continue", "do", "switch", "case",
                "default", "throw", "let", "const", "w", "d", "e"}
    unsafe = set()
    for pos, (kind, text) in enumerate(toks):
        if kind != "id":
            continue
        prev = next((toks[q][1] for q in range(pos - 1, -1, -1) if toks[q][1].strip()), "")
        nxt = next((toks[q][1] for q in range(pos + 1, len(toks)) if toks[q][1].strip()), "")
        if prev == "." or (nxt == ":" and prev in ("{", ",")):
            unsafe.add(text)
    names = sorted((n for n in declared - unsafe - keywords if len(n) > 1), key=lambda n: (-sum(1 for t in toks if t[1] == n), n))
    taken = {t[1] for t in toks if t[0] == "id"}
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    short = (a + b for b in [""] + list(alphabet) for a in alphabet)
    mapping = {}
    for name in names:
        candidate = next(short)
        while candidate in taken or candidate in keywords:
            candidate = next(short)
        mapping[name] = candidate
    return "".join(mapping.get(t[1], t[1]) if t[0] == "id" else t[1] for t in toks)


def build(name):
    with open(source_path(name)) as f:
        source = f.read()
    header = "/* Herald widget; source: widget/widget.js */\n" if name == "widget.js" else f"/* Herald; source: widget/{name} */\n"
    return header + rename_locals(rjsmin.jsmin(source)) + "\n"


def main():
    for name, budget in SCRIPTS.items():
        minified = build(name)
        size = len(minified.encode())
        gz = len(gzip.compress(minified.encode(), compresslevel=9))
        print(f"{name}: {size} bytes, {gz} bytes gzipped (budget {budget})")
        if gz >= budget:
            sys.exit(f"{name} is over its budget of {budget} bytes gzipped")
        if "--check" in sys.argv:
            with open(asset_path(name)) as f:
                if f.read() != minified:
                    sys.exit(f"Sources/NotificationsService/Resources/{name} is stale: run scripts/build-widget.py")
            continue
        with open(asset_path(name), "w") as f:
            f.write(minified)


if __name__ == "__main__":
    main()
