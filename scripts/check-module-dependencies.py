#!/usr/bin/env python3
"""Fails when a target imports a module that Package.swift does not declare as its dependency.

Every `import X` (also `@testable`, `public`, `internal`, `@preconcurrency` imports) in a target's Swift files
must name the target itself, a target in its `dependencies`, a product it lists, or a module of the toolchain.
Relying on a module that only arrives transitively works until the dependency that brings it changes. Declared
dependencies that no file imports are reported as warnings (a placeholder target with no imports yet is skipped).

    scripts/check-module-dependencies.py             check every target
    scripts/check-module-dependencies.py --self-test prove that the check catches a missing declaration
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Modules of the toolchain and the platform, never declared in Package.swift.
SYSTEM = {
    "Foundation", "FoundationEssentials", "FoundationNetworking", "FoundationXML", "Dispatch", "Glibc", "Musl",
    "Darwin", "WinSDK", "Android", "Synchronization", "Testing", "XCTest", "os", "Observation", "RegexBuilder",
    "Swift", "_Concurrency", "PackageDescription", "CoreFoundation",
}

TARGET = re.compile(r"\.(target|executableTarget|testTarget)\(\s*name:\s*\"([^\"]+)\"")
IMPORT = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+"
    r"(?:(?:class|struct|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)",
    re.MULTILINE,
)


def balanced(text: str, start: int) -> str:
    """The text of the bracketed expression that opens at `start`."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] in "([":
            depth += 1
        elif text[index] in ")]":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
    return text[start:]


def targets(manifest: str):
    """(kind, name, declared modules, path) for every target of the manifest."""
    found = []
    for match in TARGET.finditer(manifest):
        body = balanced(manifest, match.end(1))
        kind, name = match.group(1), match.group(2)
        declared = set()
        deps = re.search(r"dependencies:\s*\[", body)
        if deps:
            array = balanced(body, deps.end() - 1)
            declared |= set(re.findall(r"\.product\(\s*name:\s*\"([^\"]+)\"", array))
            declared |= set(re.findall(r"\.target\(\s*name:\s*\"([^\"]+)\"", array))
            bare = re.sub(r"\.(product|target|byName)\([^)]*\)", "", array)
            declared |= set(re.findall(r"\"([^\"]+)\"", bare))
            declared |= set(re.findall(r"\.byName\(\s*name:\s*\"([^\"]+)\"", array))
        path = re.search(r"path:\s*\"([^\"]+)\"", body)
        folder = path.group(1) if path else ("Tests/" if kind == "testTarget" else "Sources/") + name
        found.append((kind, name, declared, folder))
    return found


def code(text: str) -> str:
    """The text with multi-line string literals blanked (keeping line numbers): a script in a string imports nothing."""
    return re.sub(r'"""[\s\S]*?"""', lambda match: "\n" * match.group(0).count("\n"), text)


def imports(folder: Path):
    """Module name → first file and line that imports it."""
    seen = {}
    for file in sorted(folder.rglob("*.swift")):
        text = code(file.read_text(encoding="utf-8"))
        for match in IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            seen.setdefault(match.group(1), f"{file.relative_to(ROOT).as_posix()}:{line}")
    return seen


def problems(manifest: str, read_imports):
    missing, unused = [], []
    for _, name, declared, folder in targets(manifest):
        used = read_imports(folder)
        for module, where in sorted(used.items()):
            if module != name and module not in declared and module not in SYSTEM:
                missing.append(f"{where}: target {name} imports {module}, which Package.swift does not declare for it")
        if not used:
            continue
        for module in sorted(declared - set(used)):
            unused.append(f"warning: Package.swift: target {name} declares {module} but no file of it imports it")
    return missing, unused


def self_test():
    manifest = '''
    .target(name: "A", dependencies: ["B", .product(name: "Logging", package: "swift-log")]),
    .target(name: "B", dependencies: []),
    .testTarget(name: "ATests", dependencies: ["A"]),
    '''
    files = {
        "Sources/A": {"Logging": "Sources/A/a.swift:1", "B": "Sources/A/a.swift:2", "C": "Sources/A/a.swift:3"},
        "Sources/B": {"Foundation": "Sources/B/b.swift:1"},
        "Tests/ATests": {"A": "Tests/ATests/t.swift:1", "Testing": "Tests/ATests/t.swift:2", "B": "Tests/ATests/t.swift:3"},
    }
    missing, unused = problems(manifest, lambda folder: files[folder])
    expected = [
        "Sources/A/a.swift:3: target A imports C, which Package.swift does not declare for it",
        "Tests/ATests/t.swift:3: target ATests imports B, which Package.swift does not declare for it",
    ]
    ok = missing == expected and unused == []
    found = IMPORT.findall("@testable import Foo\n@preconcurrency public import Bar\nimport struct Baz.Qux\n// import Nope\n")
    ok = ok and found == ["Foo", "Bar", "Baz"]
    ok = ok and IMPORT.findall(code('let script = """\nimport sys\n"""\nimport Real\n')) == ["Real"]
    print("self-test: " + ("passed" if ok else f"FAILED: {missing} {unused} {found}"))
    return ok


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    manifest = (ROOT / "Package.swift").read_text(encoding="utf-8")
    missing, unused = problems(manifest, lambda folder: imports(ROOT / folder))
    for line in missing + unused:
        print(line)
    if missing:
        print(f"{len(missing)} undeclared dependencies: declare in Package.swift what each target imports.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
