import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A parsed XML element: enough of a tree to read S3's small response documents.
struct XMLTree: Sendable, Equatable {
    var name: String
    var text: String
    var children: [XMLTree]

    /// The first child element named `name`.
    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// Every child element named `name`.
    func children(_ name: String) -> [XMLTree] { children.filter { $0.name == name } }

    /// The text of the first child element named `name`.
    func value(_ name: String) -> String? { child(name)?.text }

    /// Parses a document; nil when it is not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLTree? {
        let parser = XMLParser(data: Data(bytes))
        // S3 documents have no DTDs; never fetch one.
        parser.shouldResolveExternalEntities = false
        let builder = Builder()
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(
            _ parser: XMLParser,
            didStartElement elementName: String,
            namespaceURI: String?,
            qualifiedName qName: String?,
            attributes attributeDict: [String: String] = [:]
        ) {
            stack.append(XMLTree(name: elementName, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }
    }
}

/// An S3 `<Error>` document.
struct S3ErrorBody: Sendable, Equatable {
    var code: String?
    var message: String?
    var requestID: String?
    var storageClass: String?
    /// Whether the body was an `<Error>` document at all (not empty, not a proxy's HTML page).
    var isErrorDocument = false

    /// Reads the error document, if the body is one; HEAD responses and some proxies send none.
    init(_ body: [UInt8]) {
        guard let tree = XMLTree.parse(body), tree.name == "Error" else { return }
        isErrorDocument = true
        code = tree.value("Code").flatMap(Self.nonEmpty)
        message = tree.value("Message").flatMap(Self.nonEmpty)
        requestID = tree.value("RequestId").flatMap(Self.nonEmpty)
        storageClass = tree.value("StorageClass").flatMap(Self.nonEmpty)
    }

    private static func nonEmpty(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// One page of a ListObjectsV2 response.
struct ListObjectsPage: Sendable, Equatable {
    /// Objects with their full keys (the bucket prefix included).
    var objects: [ObjectInfo]
    /// The token for the next page; nil on the last one.
    var nextContinuationToken: String?

    /// Parses a `<ListBucketResult>` document.
    init(_ body: [UInt8]) throws(ParseError) {
        guard let tree = XMLTree.parse(body) else { throw ParseError("the body is not XML") }
        guard tree.name == "ListBucketResult" else { throw ParseError("expected <ListBucketResult>, got <\(tree.name)>") }
        objects = try tree.children("Contents").map { contents throws(ParseError) in
            guard let key = contents.value("Key") else { throw ParseError("an entry has no <Key>") }
            guard let size = contents.value("Size").flatMap({ Int64($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw ParseError("entry '\(key)' has no valid <Size>")
            }
            guard let modified = contents.value("LastModified").flatMap(Self.parseDate) else {
                throw ParseError("entry '\(key)' has no valid <LastModified>")
            }
            // S3 omits nothing here, but some compatible servers leave out the class for STANDARD objects.
            let storageClass = contents.value("StorageClass").map { StorageClass(rawValue: $0) } ?? .standard
            return ObjectInfo(key: key, size: size, storageClass: storageClass, lastModified: modified)
        }
        let truncated = tree.value("IsTruncated")?.trimmingCharacters(in: .whitespaces).lowercased() == "true"
        let token = tree.value("NextContinuationToken")
        if truncated {
            guard let token, !token.isEmpty else { throw ParseError("the list is truncated but has no <NextContinuationToken>") }
            nextContinuationToken = token
        } else {
            nextContinuationToken = nil
        }
    }

    init(objects: [ObjectInfo], nextContinuationToken: String?) {
        self.objects = objects
        self.nextContinuationToken = nextContinuationToken
    }

    /// `2024-01-31T12:00:00.000Z`, with or without fractional seconds.
    static func parseDate(_ text: String) -> Date? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    struct ParseError: Error, Sendable {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}

enum S3XMLBody {
    /// `RestoreObject`'s request body.
    static func restoreRequest(days: Int, tier: String) -> [UInt8] {
        Array(
            ("<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>\(days)</Days>"
                + "<GlacierJobParameters><Tier>\(tier)</Tier></GlacierJobParameters></RestoreRequest>").utf8
        )
    }

    /// `CreateBucket`'s request body; us-east-1 takes none.
    static func createBucket(region: String) -> [UInt8] {
        guard region != "us-east-1" else { return [] }
        return Array(
            ("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>").utf8
        )
    }
}
