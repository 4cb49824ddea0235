import Foundation
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
        let fcmFile = environment["HERALD_FCM_SERVICE_ACCOUNT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let fcmJSON = environment["HERALD_FCM_SERVICE_ACCOUNT_JSON"].flatMap { $0.isEmpty ? nil : $0 }
        if fcmFile != nil || fcmJSON != nil {
            let name = fcmFile != nil ? "HERALD_FCM_SERVICE_ACCOUNT_FILE" : "HERALD_FCM_SERVICE_ACCOUNT_JSON"
            if fcmFile != nil, fcmJSON != nil {
                throw ConfigurationError("set HERALD_FCM_SERVICE_ACCOUNT_FILE or HERALD_FCM_SERVICE_ACCOUNT_JSON, not both")
            }
            let json: [UInt8]
            if let fcmFile {
                guard let data = FileManager.default.contents(atPath: fcmFile) else {
                    throw ConfigurationError("HERALD_FCM_SERVICE_ACCOUNT_FILE: cannot read \(fcmFile)")
                }
                json = Array(data)
            } else {
                json = Array((fcmJSON ?? "").utf8)
            }
            let account: FCMServiceAccount
            do {
                account = try FCMServiceAccount(json: json)
            } catch {
                // The error names the field, never the key.
                throw ConfigurationError("\(name): \(error)")
            }
            let base = environment["HERALD_FCM_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://fcm.googleapis.com"
            guard let url = URL(string: base), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false,
                url.query == nil
            else {
                throw ConfigurationError("HERALD_FCM_BASE_URL: expected an http(s) URL such as https://fcm.googleapis.com")
            }
            config.pushChannel.fcm = FCMSender(account: account, baseURL: base)
        }
        config.emailChannel.perSitePerHour = try number(
            environment, "HERALD_EMAIL_PER_SITE_PER_HOUR", 1...100_000, default: config.emailChannel.perSitePerHour)
        config.pushChannel.perSitePerHour = try number(
            environment, "HERALD_PUSH_PER_SITE_PER_HOUR", 1...1_000_000, default: config.pushChannel.perSitePerHour)
    }
}
