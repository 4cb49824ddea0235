import Foundation
import HeraldCore

/// One attribute of a SCIM schema (RFC 7643 §7), as Herald stores and publishes it.
struct SCIMAttribute: Sendable {
    var name: String
    var type: String = "string"
    var multiValued = false
    var required = false
    var caseExact = false
    var mutability = "readWrite"
    var returned = "default"
    var uniqueness = "none"
    var canonicalValues: [String] = []
    var referenceTypes: [String] = []
    var subAttributes: [SCIMAttribute] = []
    var description: String

    var isComplex: Bool { type == "complex" }
    var isReadOnly: Bool { mutability == "readOnly" }

    func subAttribute(_ name: String) -> SCIMAttribute? {
        subAttributes.first { $0.name.lowercased() == name.lowercased() }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(name), "type": .string(type), "multiValued": .bool(multiValued), "required": .bool(required),
            "caseExact": .bool(caseExact), "mutability": .string(mutability), "returned": .string(returned),
            "uniqueness": .string(uniqueness), "description": .string(description),
        ]
        if !canonicalValues.isEmpty { object["canonicalValues"] = .array(canonicalValues.map(JSONValue.string)) }
        if !referenceTypes.isEmpty { object["referenceTypes"] = .array(referenceTypes.map(JSONValue.string)) }
        if !subAttributes.isEmpty { object["subAttributes"] = .array(subAttributes.map(\.json)) }
        return .object(object)
    }
}

/// A resource schema Herald serves: the attributes it keeps, so what a client writes is what it reads back.
struct SCIMResourceSchema: Sendable {
    var id: String
    var name: String
    var description: String
    var attributes: [SCIMAttribute]

    /// Attributes RFC 7643 defines for this resource that Herald does not keep: a PUT or PATCH naming them is
    /// accepted and they are ignored, so identity providers' default mappings (title, phoneNumbers, …) work.
    var ignored: Set<String> {
        guard id == SCIMSchema.user else { return [] }
        return [
            "nickname", "profileurl", "title", "usertype", "preferredlanguage", "locale", "timezone", "password", "phonenumbers", "ims",
            "photos", "addresses", "entitlements", "roles", "x509certificates",
        ]
    }

    func attribute(_ name: String) -> SCIMAttribute? {
        if name.lowercased() == "externalid" { return Self.externalId }
        return attributes.first { $0.name.lowercased() == name.lowercased() }
    }

    /// `externalId` is common to every resource (RFC 7643 §3.1), not part of a schema.
    static let externalId = SCIMAttribute(
        name: "externalId", caseExact: true, description: "The identifier of the resource in the provisioning client.")

    func json(location: String) -> JSONValue {
        .object([
            "schemas": .array([.string(SCIMSchema.schema)]),
            "id": .string(id), "name": .string(name), "description": .string(description),
            "attributes": .array(attributes.map(\.json)),
            "meta": .object(["resourceType": .string("Schema"), "location": .string(location)]),
        ])
    }

    static let user = SCIMResourceSchema(
        id: SCIMSchema.user, name: "User", description: "A Herald account provisioned into the organization",
        attributes: [
            SCIMAttribute(
                name: "userName", required: true, uniqueness: "server",
                description: "The identity provider's unique name for the user, often the email address."),
            SCIMAttribute(
                name: "name", type: "complex",
                subAttributes: [
                    SCIMAttribute(name: "formatted", description: "The full name."),
                    SCIMAttribute(name: "familyName", description: "The family name."),
                    SCIMAttribute(name: "givenName", description: "The given name."),
                    SCIMAttribute(name: "middleName", description: "The middle names."),
                    SCIMAttribute(name: "honorificPrefix", description: "Titles before the name."),
                    SCIMAttribute(name: "honorificSuffix", description: "Suffixes after the name."),
                ],
                description: "The components of the user's name."),
            SCIMAttribute(name: "displayName", description: "The name shown in Herald."),
            SCIMAttribute(
                name: "emails", type: "complex", multiValued: true, required: true,
                subAttributes: [
                    SCIMAttribute(name: "value", required: true, description: "An email address."),
                    SCIMAttribute(name: "type", canonicalValues: ["work", "home", "other"], description: "The kind of address."),
                    SCIMAttribute(name: "primary", type: "boolean", description: "Whether this is the address Herald uses."),
                ],
                description: "Email addresses; the primary one (or the first) is the Herald account's address."),
            SCIMAttribute(
                name: "active", type: "boolean",
                description: "false suspends the user's membership and ends their sessions; true restores the membership."),
            SCIMAttribute(
                name: "groups", type: "complex", multiValued: true, mutability: "readOnly",
                subAttributes: [
                    SCIMAttribute(name: "value", mutability: "readOnly", description: "The group's id."),
                    SCIMAttribute(
                        name: "$ref", type: "reference", mutability: "readOnly", referenceTypes: ["Group"],
                        description: "The group's URI."),
                    SCIMAttribute(name: "display", mutability: "readOnly", description: "The group's displayName."),
                    SCIMAttribute(
                        name: "type", mutability: "readOnly", canonicalValues: ["direct"], description: "How the user belongs to the group."),
                ],
                description: "The groups the user belongs to; change them through the Groups endpoint."),
        ]
    )

    static let group = SCIMResourceSchema(
        id: SCIMSchema.group, name: "Group",
        description: "A group of provisioned users; a group named after a role (… Admins, … Members, … Viewers) grants it",
        attributes: [
            SCIMAttribute(name: "displayName", required: true, uniqueness: "server", description: "The group's name."),
            SCIMAttribute(
                name: "members", type: "complex", multiValued: true,
                subAttributes: [
                    SCIMAttribute(name: "value", mutability: "immutable", description: "The member's id."),
                    SCIMAttribute(
                        name: "$ref", type: "reference", mutability: "immutable", referenceTypes: ["User"],
                        description: "The member's URI."),
                    SCIMAttribute(
                        name: "type", mutability: "immutable", canonicalValues: ["User"], description: "The member's resource type."),
                ],
                description: "The group's members: provisioned users."),
        ]
    )
}

/// Turning what a client sent into the attributes Herald keeps: canonical names, known attributes only, the
/// right types. Unknown attributes (and extension schemas) are ignored, as RFC 7643 §3 allows.
enum SCIMSanitizer {
    static let maxText = 1024

    static func text(_ value: JSONValue, _ name: String) throws -> String? {
        switch value {
        case .null: return nil
        case .string(let text):
            guard text.utf8.count <= maxText else { throw SCIMError.invalidValue("\(name) is too long.") }
            guard !text.contains("\u{0}") else { throw SCIMError.invalidValue("\(name) contains a NUL character.") }
            return text
        default: throw SCIMError.invalidValue("\(name) must be a string.")
        }
    }

    static func boolean(_ value: JSONValue, _ name: String) throws -> Bool? {
        switch value {
        case .null: return nil
        case .bool(let flag): return flag
        // Some identity providers (Entra ID) send booleans as strings in PATCH operations.
        case .string(let text) where text.lowercased() == "true": return true
        case .string(let text) where text.lowercased() == "false": return false
        default: throw SCIMError.invalidValue("\(name) must be a boolean.")
        }
    }

    /// A value of `attribute` in the stored form, or nil when it is unassigned.
    static func value(_ raw: JSONValue, of attribute: SCIMAttribute, path: String) throws -> JSONValue? {
        if attribute.multiValued {
            let items: [JSONValue]
            switch raw {
            case .null: return nil
            case .array(let array): items = array
            default: items = [raw]
            }
            guard items.count <= 100 else { throw SCIMError.invalidValue("\(path) has more than 100 values.") }
            let cleaned = try items.compactMap { try single($0, of: attribute, path: path) }
            return cleaned.isEmpty ? nil : .array(cleaned)
        }
        return try single(raw, of: attribute, path: path)
    }

    private static func single(_ raw: JSONValue, of attribute: SCIMAttribute, path: String) throws -> JSONValue? {
        switch attribute.type {
        case "boolean": return try boolean(raw, path).map(JSONValue.bool)
        case "complex":
            guard case .object(let object) = raw else {
                if raw == .null { return nil }
                throw SCIMError.invalidValue("\(path) must be an object.")
            }
            var result: [String: JSONValue] = [:]
            for (key, value) in object {
                guard let sub = attribute.subAttribute(key), !sub.isReadOnly || attribute.isReadOnly else { continue }
                if let cleaned = try single(value, of: sub, path: "\(path).\(sub.name)") { result[sub.name] = cleaned }
            }
            return result.isEmpty ? nil : .object(result)
        default: return try text(raw, path).map(JSONValue.string)
        }
    }

    /// A POST or PUT body's `schemas`, when sent, must name the resource's schema (RFC 7643 §3).
    static func checkSchemas(_ body: [String: JSONValue], schema: SCIMResourceSchema) throws {
        guard let value = body.first(where: { $0.key.lowercased() == "schemas" })?.value, value != .null else { return }
        guard case .array(let items) = value, items.allSatisfy({ $0.stringValue != nil }) else {
            throw SCIMError.invalidSyntax("schemas must be a list of schema URNs.")
        }
        guard items.contains(where: { $0.stringValue?.lowercased() == schema.id.lowercased() }) else {
            throw SCIMError.invalidSyntax("schemas must include \(schema.id).")
        }
    }

    /// The writable attributes of a resource body: canonical names, readOnly ones dropped.
    static func attributes(_ body: [String: JSONValue], schema: SCIMResourceSchema) throws -> [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        for (rawKey, raw) in body {
            let key = SCIMProjection.strip(rawKey, schema: schema.id)
            guard let attribute = schema.attribute(key), !attribute.isReadOnly else { continue }
            if let value = try value(raw, of: attribute, path: attribute.name) { result[attribute.name] = value }
        }
        return result
    }
}
