import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// A user account with its personal data decrypted.
struct Account: Sendable {
    var id: UUID
    var email: String
    var name: String
    var passwordHash: String
    var createdAt: Date
    var updatedAt: Date
}

/// Accounts are global (a person can belong to many organizations). Email and name are stored encrypted,
/// bound to the row by the cipher's associated data; the email is found through its blind index.
struct AccountStore: Sendable {
    let cipher: FieldCipher
    typealias T = UsersTables

    func emailIndex(_ email: String) -> [UInt8] {
        cipher.blindIndex(EmailAddress.normalize(email), purpose: "account-email")
    }

    func insert(_ account: Account, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                INSERT INTO \(T.accounts) (id, email_index, email_encrypted, name_encrypted, password_hash, created_at, updated_at)
                VALUES (\(account.id), \(emailIndex(account.email)),
                        \(try cipher.encrypt(account.email, context: "users.accounts.email:\(account.id.lowercased)")),
                        \(try cipher.encrypt(account.name, context: "users.accounts.name:\(account.id.lowercased)")),
                        \(account.passwordHash), \(account.createdAt), \(account.updatedAt))
                """
            )
        } catch StorageError.uniqueViolation {
            throw HeraldError.conflict("An account with this email already exists. Sign in instead.", slug: "email-taken")
        }
    }

    func find(id: UUID, in tx: any SQLExecutor) async throws -> Account? {
        try await tx.queryFirst("SELECT * FROM \(T.accounts) WHERE id = \(id)").map(decode)
    }

    func find(email: String, in tx: any SQLExecutor) async throws -> Account? {
        try await tx.queryFirst("SELECT * FROM \(T.accounts) WHERE email_index = \(emailIndex(email))").map(decode)
    }

    func update(_ account: Account, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                UPDATE \(T.accounts) SET
                    email_index = \(emailIndex(account.email)),
                    email_encrypted = \(try cipher.encrypt(account.email, context: "users.accounts.email:\(account.id.lowercased)")),
                    name_encrypted = \(try cipher.encrypt(account.name, context: "users.accounts.name:\(account.id.lowercased)")),
                    password_hash = \(account.passwordHash),
                    updated_at = \(account.updatedAt)
                WHERE id = \(account.id)
                """
            )
        } catch StorageError.uniqueViolation {
            throw HeraldError.conflict("Another account already uses this email.", slug: "email-taken")
        }
    }

    func decode(_ row: SQLRow) throws -> Account {
        let id: UUID = try row.get("id")
        return Account(
            id: id,
            email: try cipher.decrypt(try row.get("email_encrypted"), context: "users.accounts.email:\(id.lowercased)"),
            name: try cipher.decrypt(try row.get("name_encrypted"), context: "users.accounts.name:\(id.lowercased)"),
            passwordHash: try row.get("password_hash"),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }
}
