import Foundation
import HeraldCore
import Testing

@testable import NotificationsService

@Suite("Message templates")
struct TemplateTests {
    func values(_ strings: [String: String], numbers: [String: Double] = [:]) -> TemplateValues {
        var values = TemplateValues()
        values.strings = strings
        values.numbers = numbers
        return values
    }

    @Test func rendersPlaceholdersSectionsAndFilters() throws {
        let template = try MessageTemplate(#"{{firstName | fallback: "Someone"}}{{#city}} from {{city}}{{/city}} {{action}} {{productName | upper}}"#)
        #expect(
            template.render(values(["firstName": "Sarah", "city": "Austin", "action": "purchased", "productName": "hoodie"])).plainText()
                == "Sarah from Austin purchased HOODIE")
        #expect(template.render(values(["action": "purchased", "productName": "hoodie"])).plainText() == "Someone purchased HOODIE")
    }

    @Test func numbersAndPlurals() throws {
        let template = try MessageTemplate(#"{{count | number}} {{count | plural: "person", "people"}} bought this"#)
        #expect(template.render(values([:], numbers: ["count": 12345])).plainText() == "12,345 people bought this")
        #expect(template.render(values([:], numbers: ["count": 1])).plainText() == "1 person bought this")
    }

    @Test func markupIsJustText() throws {
        let template = try MessageTemplate("{{firstName}} bought it")
        let rendered = template.render(values(["firstName": "<img src=x onerror=alert(1)>"]))
        #expect(rendered.plainText() == "<img src=x onerror=alert(1)> bought it")
    }

    @Test func timeAgoAndLiveValuesAreLeftForTheWidget() throws {
        var with = values([:])
        with.dates["occurredAt"] = Date(timeIntervalSince1970: 1_000)
        let rendered = try MessageTemplate("Bought {{timeAgo}}").render(with)
        #expect(rendered.runs == [.text("Bought "), .timeAgo(Date(timeIntervalSince1970: 1_000))])
        let live = try MessageTemplate(#"{{visitors}} {{visitors | plural: "person is", "people are"}} here"#).render(values([:]))
        #expect(live.plainText(visitors: 1) == "1 person is here")
        #expect(live.plainText(visitors: 14) == "14 people are here")
    }

    @Test(arguments: [
        ("{{nmae}}", "unknown placeholder 'nmae'"),
        ("Hi {{firstName", "without a matching '}}'"),
        ("Hi }} there", "without a matching '{{'"),
        ("{{#city}} from {{city}}", "never closed"),
        ("{{/city}}", "never opened"),
        ("{{firstName | shout}}", "unknown filter 'shout'"),
        ("{{firstName | fallback}}", "takes 1 argument"),
        ("{{firstName | fallback: Someone}}", "quoted text"),
    ])
    func invalidTemplatesSayWhere(source: String, message: String) throws {
        #expect(throws: TemplateError.self) { try MessageTemplate(source) }
        do {
            _ = try MessageTemplate(source)
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
            #expect(error.description.contains("at character"))
        }
    }

    @Test func builtInTemplatesParse() throws {
        for type in NotificationType.allCases {
            _ = try MessageTemplate(DefaultTemplates.body(for: type))
        }
    }
}

/// The vectors the widget's JavaScript also passes (tests-e2e/test_widget_vectors.py).
struct TargetingVectors: Decodable {
    struct Context: Decodable {
        var url: String
        var referrer: String?
        var device: String?
        var country: String?
        var visitor: String?
        var now: Double
        var timezone: String
    }

    struct Evaluation: Decodable {
        var name: String
        var rules: RuleNode?
        var context: Context
        var expected: Bool
    }

    struct Invalid: Decodable {
        var name: String
        var rules: RuleNode
    }

    struct VariantCase: Decodable {
        struct Arm: Decodable {
            var id: String
            var weight: Int
        }
        var visitorId: String
        var notificationId: String
        var variants: [Arm]
        var expected: String
    }

    var evaluate: [Evaluation]
    var invalid: [Invalid]
    var variants: [VariantCase]

    static let shared: TargetingVectors = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../Sources/NotificationsService/Resources/targeting-vectors.json")
        do {
            return try JSONDecoder().decode(TargetingVectors.self, from: Data(contentsOf: url))
        } catch {
            preconditionFailure("cannot read the targeting vectors: \(error)")
        }
    }()
}

@Suite("Targeting rules")
struct TargetingTests {
    @Test(arguments: TargetingVectors.shared.evaluate.map(\.name))
    func sharedVector(name: String) throws {
        let vector = try #require(TargetingVectors.shared.evaluate.first { $0.name == name })
        if let rules = vector.rules {
            var validator = Validator()
            Targeting.validate(rules, field: "rules", into: &validator)
            #expect(validator.errors.isEmpty, "valid vector refused: \(validator.errors)")
        }
        let c = vector.context
        let context = VisitorContext(
            url: c.url, referrer: c.referrer, device: c.device, country: c.country, visitor: c.visitor,
            now: Date(timeIntervalSince1970: c.now / 1000), timezone: c.timezone
        )
        #expect(Targeting.evaluate(vector.rules, context) == vector.expected)
    }

    @Test(arguments: TargetingVectors.shared.invalid.map(\.name))
    func invalidRulesAreRefused(name: String) throws {
        let vector = try #require(TargetingVectors.shared.invalid.first { $0.name == name })
        var validator = Validator()
        Targeting.validate(vector.rules, field: "rules", into: &validator)
        #expect(!validator.errors.isEmpty)
        #expect(validator.errors.allSatisfy { $0.field.hasPrefix("rules") })
    }

    @Test func variantAssignmentMatchesTheWidget() {
        for vector in TargetingVectors.shared.variants {
            let picked = VariantAssignment.pick(
                visitorId: vector.visitorId, notificationId: vector.notificationId, variants: vector.variants.map { ($0.id, $0.weight) }
            )
            #expect(picked == vector.expected)
        }
    }

    @Test func catastrophicPatternsAreRefusedQuickly() {
        for pattern in ["(a+)+$", "(x*)*y", "(a|a)*", "(.*)*", "((ab)*)+", "([a-z]+)*$"] {
            #expect(SafeRegex.problem(in: pattern) != nil, "\(pattern) accepted")
        }
        for pattern in ["^/products/[a-z0-9-]+$", "(jpg|png)$", "^/blog/\\d{4}/", "colou?r", "a{2,5}"] {
            #expect(SafeRegex.problem(in: pattern) == nil, "\(pattern) refused")
        }
    }
}
