import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldMail
import HeraldSecurity
import HeraldStorage
import Logging

/// Keeps Billing's view of each organization from other services' events: accounts opened on trial when an
/// organization is created, sites, published notifications and reported storage. Every change settles the account,
/// so a quota crossed by a new site or a published notification is announced at once.
struct AccountConsumer: EventConsumer {
    let service: BillingService
    let group = "billing.accounts"
    let eventTypes: Set<String> = [
        OrganizationCreated.eventType, SiteCreated.eventType, SiteDeleted.eventType, NotificationCreated.eventType,
        NotificationUpdated.eventType, NotificationPublished.eventType, NotificationPaused.eventType, NotificationDeleted.eventType,
        StorageReported.eventType,
    ]

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        let store = service.usage
        let at = event.occurredAt
        switch event.type {
        case OrganizationCreated.eventType:
            break
        case SiteCreated.eventType:
            let site = try event.decode(SiteCreated.self)
            try await store.addSite(site.siteId, organizationId: organizationId, at: at, in: tx)
        case SiteDeleted.eventType:
            try await store.removeSite(try event.decode(SiteDeleted.self).siteId, in: tx)
        case StorageReported.eventType:
            let report = try event.decode(StorageReported.self)
            try await store.setStorage(report.bytes, organizationId: organizationId, service: report.service, measuredAt: report.measuredAt, in: tx)
        case NotificationDeleted.eventType:
            let change = try event.decode(NotificationDeleted.self).notification
            try await store.setCampaign(change.notificationId, organizationId: organizationId, siteId: change.siteId, published: nil, at: at, in: tx)
        default:
            // Every other notification event carries the notification's state.
            let change =
                switch event.type {
                case NotificationCreated.eventType: try event.decode(NotificationCreated.self).notification
                case NotificationUpdated.eventType: try event.decode(NotificationUpdated.self).notification
                case NotificationPublished.eventType: try event.decode(NotificationPublished.self).notification
                default: try event.decode(NotificationPaused.self).notification
                }
            try await store.setCampaign(
                change.notificationId, organizationId: organizationId, siteId: change.siteId, published: change.status == "published", at: at, in: tx
            )
        }
        try await service.settle(organizationId, in: tx)
    }
}

/// Counts impressions from beacon batches: popups actually shown to people (bots excluded), per organization, site
/// and billing period. Applied in batches like the analytics ingest; the bus records each event id with the
/// counts, so a redelivered batch is never counted twice.
struct ImpressionMeter: BatchEventConsumer {
    let service: BillingService
    let group = "billing.impressions"
    let eventTypes: Set<String> = [BeaconBatch.eventType]
    var maxBatch: Int { 500 }
    /// Like the analytics ingest: a tenth of a second of beacon commits counted in one transaction.
    var linger: Duration { .milliseconds(100) }
    /// Counting impressions before the transaction changes nothing anywhere.
    var preparesAhead: Bool { true }

    /// One event's impressions, decoded before the transaction.
    struct Counted: Sendable {
        var organizationId: UUID
        var siteId: UUID
        var impressions: Int64
        var receivedAt: Date
    }

    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        var counted: [UUID: Counted] = [:]
        for event in events {
            guard let organizationId = event.organizationId, let siteId = event.siteId else { continue }
            let (impressions, receivedAt) = try Self.impressions(in: event)
            if impressions > 0 {
                counted[event.id] = Counted(organizationId: organizationId, siteId: siteId, impressions: impressions, receivedAt: receivedAt)
            }
        }
        return counted
    }

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        try await handle(batch: events, prepared: try await prepare(batch: events), in: tx)
    }

    func handle(batch events: [EventEnvelope], prepared: any Sendable, in tx: any SQLExecutor) async throws {
        // `events` leaves out what was applied before (a redelivery): sum only these, per organization and site.
        let counted = prepared as? [UUID: Counted] ?? [:]
        var totals: [UUID: [UUID: (impressions: Int64, receivedAt: Date)]] = [:]
        for event in events {
            guard let entry = counted[event.id] else { continue }
            var site = totals[entry.organizationId, default: [:]][entry.siteId] ?? (0, entry.receivedAt)
            site.impressions += entry.impressions
            site.receivedAt = min(site.receivedAt, entry.receivedAt)
            totals[entry.organizationId, default: [:]][entry.siteId] = site
        }
        for (organizationId, sites) in totals {
            try await tx.setTenant(.organization(organizationId))
            let account = try await service.currentAccount(organizationId, in: tx)
            for (siteId, entry) in sites {
                // Impressions that arrived before the current period began belong to the one before it.
                let periodStart =
                    entry.receivedAt >= account.periodStart
                    ? account.periodStart : BillingPolicy.previousPeriodStart(before: account.periodStart, interval: account.interval)
                try await service.usage.addImpressions(
                    entry.impressions, organizationId: organizationId, siteId: siteId, periodStart: periodStart, in: tx)
            }
            try await service.settle(organizationId, in: tx)
        }
    }

    /// Non-bot impression beacons in one `widget.beacons_recorded` event, and when it arrived.
    static func impressions(in event: EventEnvelope) throws -> (Int64, Date) {
        if event.version == BeaconBatch.schemaVersion {
            let batch = try RecentBeaconBatches.shared.batch(eventId: event.id) ?? BeaconBatch(json: event.data)
            var count: Int64 = 0
            for visit in batch.visits where !visit.bot {
                for beacon in visit.beacons where beacon.type == "impression" { count += 1 }
            }
            return (count, Date(timeIntervalSince1970: Double(batch.receivedAt) / 1000))
        }
        let old = try event.decode(BeaconsRecordedV1.self)
        return (Int64(old.beacons.filter { $0.type == "impression" }.count), old.receivedAt)
    }
}

/// Emails the organization's billing contact when a usage threshold is reached. The mail is sent before the bus
/// records the event (in `prepare`), so a failed send is retried with the event; a crash between the two can send
/// one alert twice, never none.
struct AlertMailer: BatchEventConsumer {
    let service: BillingService
    let group = "billing.alert-mail"
    let eventTypes: Set<String> = [UsageThresholdReached.eventType]
    var maxBatch: Int { 20 }

    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        let mail = service.options.mail
        guard !(mail is DisabledMailTransport), let from = service.options.mailFrom else {
            return ()
        }
        for event in events {
            let alert = try event.decode(UsageThresholdReached.self)
            let encrypted = try await service.database.transaction(.organization(alert.organizationId)) { tx in
                try await service.accounts.find(alert.organizationId, in: tx)?.billingEmail
            }
            guard let encrypted else { continue }
            let address = try service.cipher.decrypt(encrypted, context: BillingService.emailContext(alert.organizationId))
            guard let recipient = try? MailAddress(address) else { continue }
            do {
                let planName = service.policy.catalog.plan(alert.planId)?.name ?? alert.planId
                try await mail.send(try Self.message(alert, from: from, to: recipient, planName: planName))
            } catch let error as MailError where error.kind == .permanent {
                // A refused address will not start working on a retry: the webhook event still went out.
                service.logger.warning("billing: a usage alert could not be mailed", metadata: ["error": "\(error)"])
            }
        }
        return ()
    }

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {}

    static func message(_ alert: UsageThresholdReached, from: MailAddress, to: MailAddress, planName: String) throws -> MailMessage {
        let metric = UsageMetric(rawValue: alert.metric).map(Self.words) ?? alert.metric
        let subject = "Herald: \(alert.threshold) % of your \(metric) quota used"
        let action =
            alert.threshold >= 120
            ? "Popups are paused until the next period begins on \(ISO8601.string(from: alert.periodEnd)) or you upgrade."
            : alert.threshold >= 100
                ? "You have used your whole quota; popups keep showing up to the hard limit, then pause." : "No action is needed yet."
        let body = """
            Your organization has used \(alert.usage) of \(alert.quota) \(metric) (\(alert.threshold) %) on the \(planName) plan,
            in the period from \(ISO8601.string(from: alert.periodStart)) to \(ISO8601.string(from: alert.periodEnd)).

            \(action)
            """
        return try MailMessage(from: from, to: [to], subject: subject, text: body)
    }

    static func words(_ metric: UsageMetric) -> String {
        switch metric {
        case .impressions: "notification impressions"
        case .activeCampaigns: "active campaigns"
        case .sites: "sites"
        case .storageBytes: "bytes of storage"
        }
    }
}
