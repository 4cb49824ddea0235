import HeraldMail
import HeraldPush
import NotificationsService

extension HeraldConfiguration {
    /// Reads the delivery channels' settings (docs/CHANNELS.md); their mail transport is the shared one.
    static func readChannels(_ environment: [String: String], into config: inout HeraldConfiguration) throws {
        if let key = environment["HERALD_SENDGRID_EVENT_KEY"], !key.isEmpty {
            do {
                config.emailChannel.sendGridEvents = try SendGridEventWebhook(verificationKey: key)
            } catch {
                throw ConfigurationError("HERALD_SENDGRID_EVENT_KEY: \(error)")
            }
        }
        if let key = environment["HERALD_VAPID_PRIVATE_KEY"], !key.isEmpty {
            do {
                config.pushChannel.vapid = try VAPIDKey(privateKey: key, subject: environment["HERALD_VAPID_SUBJECT"] ?? "")
            } catch {
                throw ConfigurationError("HERALD_VAPID_PRIVATE_KEY / HERALD_VAPID_SUBJECT: \(error)")
            }
        }
        config.emailChannel.perSitePerHour = try number(
            environment, "HERALD_EMAIL_PER_SITE_PER_HOUR", 1...100_000, default: config.emailChannel.perSitePerHour)
        config.pushChannel.perSitePerHour = try number(
            environment, "HERALD_PUSH_PER_SITE_PER_HOUR", 1...1_000_000, default: config.pushChannel.perSitePerHour)
    }
}
