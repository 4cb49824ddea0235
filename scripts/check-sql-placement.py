#!/usr/bin/env python3
"""Fails when SQL appears outside the places that may hold it.

Services keep their queries in store types (`Sources/<Service>/Stores/`), their schema in `Migrations/`; the
storage and events libraries hold the rest, and the Analytics service's ClickHouse folder holds ClickHouse SQL.
Anywhere else, a statement literal (`"SELECT … FROM …"`, `INSERT INTO`, `UPDATE … SET`, `DELETE FROM`,
`CREATE/ALTER/DROP TABLE …`) or a call that runs one (`tx.query(`, `tx.execute(`, `tx.queryFirst(`,
`database.query(`) is reported with its file and line, and the script exits with status 1.

    scripts/check-sql-placement.py              check Sources/
    scripts/check-sql-placement.py FILE...      check these files (as if they were where they are)
    scripts/check-sql-placement.py --self-test  prove that the check catches what it should and nothing else
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = [
    re.compile(r"^Sources/[^/]+/Stores/"),
    re.compile(r"^Sources/[^/]+/Migrations/"),
    re.compile(r"^Sources/HeraldStorage/"),
    re.compile(r"^Sources/HeraldEvents/"),
    re.compile(r"^Sources/AnalyticsService/ClickHouse/"),
]

# A call that runs SQL: on a transaction, a database or a closure's executor argument.
CALL = re.compile(r"(?<![\w.])(?:tx|database|db|executor|connection|\$0|\$1)\s*\.\s*(?:query|queryFirst|execute)\s*\(")

# A statement in a string literal. Keywords are upper case, as Herald writes SQL; prose ("Update the site") is not.
STATEMENT = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b"
    r"|\bINSERT\s+INTO\b"
    r"|\bUPDATE\s+\S+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bWITH\s+\w+\s+AS\s*\("
    r"|\b(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+)?"
    r"(?:TABLE|INDEX|SCHEMA|POLICY|TRIGGER|FUNCTION|VIEW|ROLE|DATABASE|EXTENSION|SEQUENCE|TYPE)\b"
    r"|^\s*SELECT\s+\d+\s*$"
)


def strip_comment(line: str) -> str:
    """The line without a `//` comment (outside string literals)."""
    in_string = False
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and in_string:
            index += 2
            continue
        if char == '"':
            in_string = not in_string
        elif not in_string and line.startswith("//", index):
            return line[:index]
        index += 1
    return line


def literals(text: str):
    """Yields (line number, content) for every string literal: `\"\"\"…\"\"\"` blocks and `"…"` on one line."""
    lines = text.split("\n")
    number = 0
    while number < len(lines):
        line = strip_comment(lines[number])
        start = line.find('"""')
        if start >= 0 and line.count('"""') == 1:
            body = []
            first = number + 1
            number += 1
            while number < len(lines) and '"""' not in lines[number]:
                body.append(lines[number])
                number += 1
            yield first, "\n".join(body)
            number += 1
            continue
        for match in re.finditer(r'"((?:[^"\\]|\\.)*)"', line.replace('"""', "")):
            yield number + 1, match.group(1)
        number += 1


def problems(relative: str, text: str):
    """Every misplaced query of one file as (line, what)."""
    if any(pattern.search(relative) for pattern in ALLOWED):
        return []
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        code = strip_comment(line)
        match = CALL.search(code)
        if match:
            found.append((number, f"runs SQL ({match.group(0).strip()}…)"))
    for number, content in literals(text):
        match = STATEMENT.search(content)
        if match:
            snippet = " ".join(match.group(0).split())[:40]
            found.append((number, f"SQL statement in a string literal ({snippet}…)"))
    return sorted(set(found))


def check(paths):
    failures = 0
    for path in paths:
        relative = path.resolve().relative_to(ROOT).as_posix()
        for number, what in problems(relative, path.read_text(encoding="utf-8")):
            print(f"{relative}:{number}: {what}; move it into a store under Sources/<Service>/Stores/")
            failures += 1
    return failures


BAD = '''
struct Handler {
    func run(tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \\\\(T.sites) WHERE id = \\\\(id)")
        let rows = try await tx.query(
            """
            SELECT id FROM \\\\(T.sites)
            WHERE organization_id = \\\\(org)
            """
        )
        _ = try await database.query("SELECT organization_id FROM routes").first
        let statement: SQL = "UPDATE \\\\(T.sites) SET name = \\\\(name)"
        try await database.transaction(.system) { try await $0.queryFirst(statement) }
    }
}
'''

GOOD = '''
// tx.execute("DELETE FROM sites") in a comment is not code.
struct Handler {
    /// Runs `SELECT * FROM sites` through the store.
    func run() async throws {
        throw HeraldError.conflict("Update the site first, then select it from the list.")
        let text = "Insert into the page; delete from the cart; drop table talk."
        let result = try await http.execute(request, timeout: .seconds(5))
        let items = request.uri.queryParameters.get("cursor")
        try await database.transaction(grant.scope) { try await sites.find(id, in: $0) }
    }
}
'''


def self_test():
    bad = problems("Sources/UsersService/SiteRoutes.swift", BAD)
    expected_lines = {4, 5, 6, 11, 12, 13}
    lines = {number for number, _ in bad}
    ok = True
    if not expected_lines <= lines:
        print(f"self-test: missed SQL on lines {sorted(expected_lines - lines)} of the bad snippet; found {bad}")
        ok = False
    if problems("Sources/UsersService/Stores/SiteStore.swift", BAD):
        print("self-test: SQL in a store was reported")
        ok = False
    good = problems("Sources/UsersService/SiteRoutes.swift", GOOD)
    if good:
        print(f"self-test: false positives in the good snippet: {good}")
        ok = False
    print("self-test: " + ("passed" if ok else "FAILED"))
    return ok


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    paths = [Path(arg) for arg in argv[1:]] or sorted((ROOT / "Sources").rglob("*.swift"))
    failures = check(paths)
    if failures:
        print(f"{failures} misplaced SQL statement(s): queries belong in store types (Sources/<Service>/Stores/).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
