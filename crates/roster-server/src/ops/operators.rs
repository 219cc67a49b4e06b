//! Operator accounts: people who run Roster sign in to the console with an email and a
//! password, created from the command line (`roster operator add`); the console checks them. Passwords are stored as
//! Argon2id hashes; ten wrong passwords in a row lock the account for fifteen minutes, and a
//! new password or a removed account ends its sessions at once.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use roster_store::{Operator, Store, StoreError};
use time::{Duration, OffsetDateTime};

use super::OpError;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing is the cost, so bound it).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Wrong passwords in a row before the account locks.
pub const MAX_FAILURES: u32 = 10;
/// How long a locked account stays locked.
pub const LOCK_FOR: Duration = Duration::minutes(15);

/// The sign-in name: trimmed and lower-cased; must look like an email address.
///
/// # Errors
/// A message saying what is wrong.
pub fn normalize_email(s: &str) -> Result<String, String> {
    let e = s.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(format!(
            "{s:?} is not an email address such as ann@example.com"
        ))
    }
}

/// Checks a new password's length.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_password(p: &str) -> Result<(), String> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "a password may have at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The Argon2id hash (PHC string) of a password, with a random salt.
///
/// # Errors
/// When hashing fails (it does not for valid parameters).
pub fn hash_password(p: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(p.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `p` matches the stored hash. A malformed hash matches nothing.
#[must_use]
pub fn verify_password(p: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|h| Argon2::default().verify_password(p.as_bytes(), &h).is_ok())
}

/// A hash of a random password, verified against when the email is unknown, so that a wrong
/// email takes as long as a wrong password.
#[must_use]
pub fn decoy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&crate::tokens::random_alnum(24)).unwrap_or_default())
}

/// A random password of 24 letters and digits (about 143 bits).
#[must_use]
pub fn generate_password() -> String {
    crate::tokens::random_alnum(24)
}

/// Creates an operator account.
///
/// # Errors
/// [`OpError::Invalid`] for the email or password; [`OpError::Conflict`] when the email is
/// taken; a store failure.
pub async fn add(
    store: &dyn Store,
    now: OffsetDateTime,
    email: &str,
    password: &str,
) -> Result<Operator, OpError> {
    let email = normalize_email(email).map_err(|m| OpError::invalid_field("email", m))?;
    check_password(password).map_err(|m| OpError::invalid_field("password", m))?;
    let op = Operator {
        email: email.clone(),
        password_hash: hash_password(password).map_err(OpError::invalid)?,
        created_at: now,
        password_changed_at: now,
        last_sign_in_at: None,
        failed_attempts: 0,
        locked_until: None,
    };
    match store.create_operator(&op).await {
        Ok(()) => Ok(op),
        Err(StoreError::Conflict(_)) => Err(OpError::conflict(format!(
            "an operator with email {email:?} exists already"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Sets a new password; the operator's sessions end at once.
///
/// # Errors
/// [`OpError::Invalid`] for the email or password; [`OpError::NotFound`]; a store failure.
pub async fn set_password(
    store: &dyn Store,
    now: OffsetDateTime,
    email: &str,
    password: &str,
) -> Result<(), OpError> {
    let email = normalize_email(email).map_err(|m| OpError::invalid_field("email", m))?;
    check_password(password).map_err(|m| OpError::invalid_field("password", m))?;
    let hash = hash_password(password).map_err(OpError::invalid)?;
    match store.set_operator_password(&email, &hash, now).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(OpError::not_found(format!(
            "no operator with email {email:?}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Removes an operator; its sessions end at once.
///
/// # Errors
/// [`OpError::NotFound`]; a store failure.
pub async fn remove(store: &dyn Store, email: &str) -> Result<(), OpError> {
    let email = normalize_email(email).map_err(|m| OpError::invalid_field("email", m))?;
    match store.delete_operator(&email).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(OpError::not_found(format!(
            "no operator with email {email:?}"
        ))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "ann", "@x", "a@", "a b@x"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
