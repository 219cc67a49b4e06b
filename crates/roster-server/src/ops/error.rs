//! What an operation reports when it does not happen, in the domain's terms. Each surface maps
//! an [`OpError`] once: the admin API to an HTTP status and JSON body
//! (`impl From<OpError> for crate::admin::ApiError`), the console to a page
//! (`impl From<OpError> for crate::console::ConsoleError`), the command line to its message.
//!
//! The words of the store's refusals (a taken name, a stale version, shared emails) are written
//! here, once, in `OpError`'s `From<StoreError>`, so that every surface says the same thing.

use roster_store::StoreError;
use serde_json::{json, Value};

/// Why an operation did not happen. No variant names an HTTP status: that is each surface's
/// choice.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// What the operation acts on does not exist, or is not live.
    #[error("{message}")]
    NotFound {
        /// What is missing, in words (`no tenant "acme"`).
        message: String,
    },
    /// The input is not acceptable; every problem found, each with the field it is about when
    /// there is one, so that a form can show each error next to its field.
    #[error("{}", join(.errors))]
    Invalid {
        /// The problems, at least one.
        errors: Vec<FieldError>,
    },
    /// The input is fine but the current state forbids it (a taken id, a stale version, a
    /// field another party owns); the same request may work once the state changes.
    #[error("{message}")]
    Conflict {
        /// What is in the way, and what to do about it.
        message: String,
        /// What a program needs beyond the words (for example the users that share an email),
        /// as data; absent from most conflicts.
        details: Option<Box<Value>>,
    },
    /// The actor may not do this.
    #[error("{message}")]
    Forbidden {
        /// Why not.
        message: String,
    },
    /// The store failed (or its deprovisioning guard refused): nothing the caller's input
    /// could have avoided. Only [`StoreError::Backend`], [`StoreError::Unavailable`] and
    /// [`StoreError::GuardRefused`] end up here; the store's other refusals become the variants
    /// above.
    #[error(transparent)]
    Store(StoreError),
}

/// One problem with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field it is about (`name`, `settings.token_ttl_days`), when there is one.
    pub field: Option<String>,
    /// What is wrong, in a sentence that stands on its own (it names the field too), because
    /// the admin API and the command line show it without the field.
    pub message: String,
}

fn join(errors: &[FieldError]) -> String {
    let all: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    all.join("; ")
}

impl OpError {
    /// [`OpError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    /// [`OpError::NotFound`] for a tenant that does not exist (or was deleted).
    #[must_use]
    pub fn no_tenant(id: &str) -> Self {
        Self::not_found(format!("no tenant \"{id}\""))
    }

    /// [`OpError::Invalid`] with one problem that belongs to no single field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            errors: vec![FieldError {
                field: None,
                message: message.into(),
            }],
        }
    }

    /// [`OpError::Invalid`] with one problem of `field`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            errors: vec![FieldError {
                field: Some(field.into()),
                message: message.into(),
            }],
        }
    }

    /// [`OpError::Conflict`] without details.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: None,
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Conflict(what) => Self::conflict(format!("{what} already exists")),
            StoreError::Stale => Self::conflict("modified concurrently; retry"),
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::EmailTaken(value) => Self::conflict(format!(
                "the email \"{value}\" is already the email of another user of this tenant, and \
                 the tenant requires unique emails (setting email_uniqueness)"
            )),
            StoreError::EmailDuplicates(d) => Self::Conflict {
                message: email_duplicates_message(&d),
                details: Some(Box::new(email_duplicates_details(&d))),
            },
            StoreError::TooMany { candidates, limit } => {
                Self::invalid(crate::error::too_many_detail(candidates, limit))
            }
            e @ (StoreError::GuardRefused(_)
            | StoreError::Backend(_)
            | StoreError::Unavailable(_)) => Self::Store(e),
        }
    }
}

/// How an operator's decision on a tenant's held state (the guard, the first-sync review)
/// reports the store's refusal: an unknown tenant is not found, a state that leaves nothing to
/// decide (the store's `Invalid`) a conflict in the store's words.
pub(crate) fn decision_error(tenant: &str, e: StoreError) -> OpError {
    match e {
        StoreError::NotFound => OpError::no_tenant(tenant),
        StoreError::Invalid(m) => OpError::conflict(m),
        other => other.into(),
    }
}

/// The shared emails as data: `{"total": n, "duplicates": [{"email", "users": [{"id",
/// "user_name"}]}]}` (the first [`roster_store::EmailDuplicates::SHOWN`] emails).
#[must_use]
pub fn email_duplicates_details(d: &roster_store::EmailDuplicates) -> Value {
    let duplicates: Vec<Value> = d
        .shown
        .iter()
        .map(|dup| {
            let users: Vec<Value> = dup
                .users
                .iter()
                .map(|(id, name)| json!({"id": id, "user_name": name}))
                .collect();
            json!({"email": dup.email, "users": users})
        })
        .collect();
    json!({"total": d.total, "duplicates": duplicates})
}

/// Why `email_uniqueness` cannot be turned on: the shared emails, each with its users.
#[must_use]
pub fn email_duplicates_message(d: &roster_store::EmailDuplicates) -> String {
    let list: Vec<String> = d
        .shown
        .iter()
        .map(|dup| {
            let users: Vec<String> = dup
                .users
                .iter()
                .map(|(id, name)| {
                    if name.is_empty() {
                        id.clone()
                    } else {
                        format!("{name} ({id})")
                    }
                })
                .collect();
            format!("\"{}\": {}", dup.email, users.join(", "))
        })
        .collect();
    let more = usize::try_from(d.total)
        .unwrap_or(usize::MAX)
        .saturating_sub(d.shown.len());
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "email_uniqueness cannot be set to {}: {} email{} {} shared by several users of this \
         tenant (active, deactivated or app users), compared case-insensitively: {}{more}. \
         Give each user its own email (in the identity provider, or through the app API for app \
         users), or deprovision the duplicates, then try again",
        d.mode.as_str(),
        d.total,
        if d.total == 1 { "" } else { "s" },
        if d.total == 1 { "is" } else { "are" },
        list.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_told() {
        let e = OpError::Invalid {
            errors: vec![
                FieldError {
                    field: Some("name".into()),
                    message: "name must not be empty".into(),
                },
                FieldError {
                    field: None,
                    message: "roles must name at least one role".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "name must not be empty; roles must name at least one role"
        );
    }

    #[test]
    fn the_stores_refusals_become_domain_errors() {
        assert!(matches!(
            OpError::from(StoreError::NotFound),
            OpError::NotFound { .. }
        ));
        let e = OpError::from(StoreError::Conflict("userName"));
        assert!(matches!(e, OpError::Conflict { details: None, .. }));
        assert_eq!(e.to_string(), "userName already exists");
        assert!(matches!(
            OpError::from(StoreError::Stale),
            OpError::Conflict { .. }
        ));
        let e = OpError::from(StoreError::Invalid("bad cursor".into()));
        assert_eq!(e.to_string(), "bad cursor");
        assert!(matches!(e, OpError::Invalid { .. }));
        let e = OpError::from(StoreError::TooMany {
            candidates: 9,
            limit: 5,
        });
        assert!(matches!(e, OpError::Invalid { .. }));
        let e = OpError::from(StoreError::Backend("disk".into()));
        assert!(matches!(e, OpError::Store(StoreError::Backend(_))));
        assert!(matches!(
            decision_error("acme", StoreError::NotFound),
            OpError::NotFound { message } if message == "no tenant \"acme\""
        ));
        assert!(matches!(
            decision_error("acme", StoreError::Invalid("nothing held".into())),
            OpError::Conflict { message, .. } if message == "nothing held"
        ));
    }
}
