import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging
import ServiceLifecycle

/// The Notifications service: notifications, templates, targeting rules and A/B tests, and their delivery to
/// visitors' pages (the widget, its feed, the live stream and the beacons it sends back).
public struct NotificationsService: HeraldModule {
    public static let name = "notifications"
    let database: any Database
    let bus: any EventBus
    let access: AccessControl
    let logger: Logger
    let feeds: FeedCache
    let stream: LiveStream
    let presence: PresenceTracker
    let beacons: BeaconWriter
    let hasher: VisitorHasher
    let widget: WidgetAsset
    /// The web push opt-in prompt the widget loads on sites that offer push.
    let pushOptIn: WidgetAsset
    let options: Options
    let notifications = NotificationStore()
    let templates = TemplateStore()
    let holds = DeliveryHoldStore()
    let sites = SiteStore()
    let activities = ActivityStore()
    let cipher: FieldCipher
    let email: EmailChannelOptions
    let push: PushChannelOptions
    let emailRecipients: EmailRecipientStore
    let pushSubscriptions: PushSubscriptionStore
    let emailSender: ChannelSender<EmailTransport>
    let pushSender: ChannelSender<PushTransport>

    /// Operator settings for delivery.
    public struct Options: Sendable {
        /// The request header a CDN or proxy puts the visitor's country in (`CF-IPCountry`).
        public var countryHeader: String
        /// `Cache-Control: max-age` of the widget feed; a pause or a new activity reaches new page views within it.
        public var feedMaxAge: Int
        /// How often open live streams get a keep-alive comment.
        public var pingInterval: Duration
        /// New activities pushed to open pages are grouped over this interval.
        public var pushInterval: Duration
        /// A built feed is rebuilt after this many seconds even without an event, which bounds staleness when
        /// another Herald instance on the same database handled the change.
        public var feedRefreshSeconds: Int

        public init(
            countryHeader: String = "CF-IPCountry", feedMaxAge: Int = 5, pingInterval: Duration = .seconds(15),
            pushInterval: Duration = .milliseconds(200), feedRefreshSeconds: Int = 30
        ) {
            self.countryHeader = countryHeader
            self.feedMaxAge = feedMaxAge
            self.feedRefreshSeconds = feedRefreshSeconds
            self.pingInterval = pingInterval
            self.pushInterval = pushInterval
        }
    }

    public init(
        database: any Database, bus: any EventBus, access: AccessControl, cipher: FieldCipher, options: Options = Options(),
        email: EmailChannelOptions = EmailChannelOptions(), push: PushChannelOptions = PushChannelOptions(),
        signals: any ClusterSignals = LocalSignals(), logger: Logger
    ) {
        self.database = database
        self.cipher = cipher
        self.email = email
        self.push = push
        self.emailRecipients = EmailRecipientStore(cipher: cipher)
        self.pushSubscriptions = PushSubscriptionStore(cipher: cipher)
        self.emailSender = ChannelSender(
            database: database, transport: EmailTransport(recipients: EmailRecipientStore(cipher: cipher), options: email, cipher: cipher),
            logger: logger
        )
        self.pushSender = ChannelSender(
            database: database, transport: PushTransport(subscriptions: PushSubscriptionStore(cipher: cipher), options: push), logger: logger)
        self.bus = bus
        self.access = access
        self.logger = logger
        self.options = options
        let stream = LiveStream()
        self.stream = stream
        self.feeds = FeedCache(
            database: database, stream: stream, logger: logger, pushInterval: options.pushInterval,
            refreshAfter: TimeInterval(options.feedRefreshSeconds), signals: signals
        )
        self.presence = PresenceTracker()
        self.beacons = BeaconWriter(bus: bus, logger: logger)
        self.hasher = VisitorHasher(database: database)
        self.widget = WidgetAsset.load()
        self.pushOptIn = WidgetAsset.load("push-optin")
    }

    /// The event consumers this service runs.
    public var consumers: [any EventConsumer] {
        [
            SiteDirectoryConsumer(feeds: feeds),
            ActivityConsumer(feeds: feeds, channels: channelFanout, senders: [emailSender.wake, pushSender.wake]),
            DeliveryHoldConsumer(feeds: feeds),
        ]
    }

    /// The tables Billing meters as this service's storage.
    public var storageFootprint: StorageFootprint? { NotificationsTables.footprint }

    public var fastRoutes: [any FastRoute] { [FeedFastRoute(feeds: feeds, maxAge: options.feedMaxAge), BeaconsFastRoute(notifications: self)] }

    /// Long-running parts: live-stream keep-alives and shutdown, presence pruning, other instances' feed changes.
    public var services: [any Service] {
        [
            LiveStreamService(stream: stream, pingInterval: options.pingInterval), PresencePruner(presence: presence, hasher: hasher),
            FeedSignalListener(feeds: feeds), emailSender, pushSender,
        ]
    }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        addManagementRoutes(to: router)
        addWidgetRoutes(to: router)
        addEmailRoutes(to: router)
        addPushRoutes(to: router)
        addChannelRoutes(to: router)
    }

    /// The channels a new activity fans out to: those this Herald can send on.
    var channelFanout: ChannelFanout {
        var channels: [ChannelFanout.Channel] = []
        if email.isAvailable {
            let recipients = emailRecipients
            channels.append(.init(deliveries: .email) { siteId, tx in try await recipients.subscribedRecipientIds(siteId: siteId, in: tx) })
        }
        if push.isAvailable {
            let subscriptions = pushSubscriptions
            channels.append(.init(deliveries: .push) { siteId, tx in try await subscriptions.activeIds(siteId: siteId, in: tx) })
        }
        return ChannelFanout(channels: channels)
    }

    /// Runs `body` in a transaction, then wakes consumers and refreshes the site's feed.
    func write<T: Sendable>(_ grant: SiteAccess, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        let result = try await database.transaction(grant.scope, body)
        bus.didCommitEvents()
        await feeds.invalidate(siteId: grant.siteId, reason: .notificationsChanged)
        return result
    }
}

extension NotificationsService {
    public static let migrations = MigrationSet(
        owner: "notifications",
        migrations: [
            NotificationsMigrations.v1,
            NotificationsMigrations.v2,
            NotificationsMigrations.v3,
            NotificationsMigrations.v4,
            NotificationsMigrations.v5,
        ]
    )
}

/// The service's migrations, one file each under `Migrations/`.
enum NotificationsMigrations {
    /// Tenant tables whose row-level security policy was written before `tenancy.current_organization()`.
    static let landedTenantTables: [Table] = [
        NotificationsTables.sites, NotificationsTables.activities, NotificationsTables.templates, NotificationsTables.notifications,
        NotificationsTables.targetingRules, NotificationsTables.abTests, NotificationsTables.abTestVariants,
    ]
}

/// Once a minute: forgets visitors who left, and salts past their two days.
struct PresencePruner: Service {
    let presence: PresenceTracker
    let hasher: VisitorHasher

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                presence.prune()
                try? await hasher.prune()
            }
        }
    }
}

/// Applies the feed changes other instances broadcast, so a popup reaches visitors connected to any instance and no
/// instance serves a feed staler than the change.
struct FeedSignalListener: Service {
    let feeds: FeedCache

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await message in feeds.signals.messages(FeedCache.channel) { await feeds.applyRemote(message) }
        }
        // A service that returns stops the process: if the signals end before shutdown, wait for it.
        try await gracefulShutdown()
    }
}
