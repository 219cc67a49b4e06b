//! Email uniqueness per tenant (the tenant setting `email_uniqueness`).
//!
//! While the setting is not `off`, the table `email_claims` holds, for each counted user (not
//! deprovisioned: active, deactivated, or an app user SCIM does not manage), the emails the
//! setting counts ([`claimed_values`]), one row per (tenant, folded email) with the user's pk.
//! Its primary key is the rule: a write that would give a second user the same email fails to
//! insert the row, and the write answers [`StoreError::EmailTaken`]. Every write that changes a
//! user's emails, or brings a user back (restore, a SCIM create claiming an app user),
//! replaces that user's rows in its own transaction ([`claim`]); deprovisioning removes them
//! ([`release`]); erasing a user removes them with its row (the foreign key cascades). A
//! change of the setting rebuilds the tenant's rows ([`change_mode`]), or is refused with the
//! emails already shared.
//!
//! Because the index holds the rule, it holds under concurrent writes whatever the backend
//! serialises; SQLite's single writer and PostgreSQL's per-tenant write lock only make the
//! conflict show as the rows' insert rather than a wait.

use serde_json::Value;

use super::{EmailKey, Rows};
use crate::{EmailDuplicate, EmailDuplicates, EmailUniqueness, StoreError, StoreResult};

/// The folded emails `mode` counts for a user with these `emails`, each once: with `any`,
/// every value; with `primary`, the values of the elements marked primary, or, when none is,
/// the one value all its elements have (none when they have several); with `off`, none.
#[must_use]
pub fn claimed_values(mode: EmailUniqueness, emails: &[EmailKey]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: &String| {
        if !out.contains(v) {
            out.push(v.clone());
        }
    };
    match mode {
        EmailUniqueness::Off => {}
        EmailUniqueness::Any => emails
            .iter()
            .filter_map(|e| e.value.as_ref())
            .for_each(push),
        EmailUniqueness::Primary => {
            let marked = emails
                .iter()
                .filter(|e| e.primary == Some(true))
                .filter_map(|e| e.value.as_ref());
            marked.for_each(&mut push);
            if out.is_empty() {
                let mut values = emails.iter().filter_map(|e| e.value.as_ref());
                if let Some(first) = values.next() {
                    if values.all(|v| v == first) {
                        out.push(first.clone());
                    }
                }
            }
        }
    }
    out
}

/// The SQL (both backends' dialect) selecting the `(value_lc, resource_pk)` pairs `mode` counts
/// among the tenant's users (`?1`), each pair once: the same rule as [`claimed_values`], over
/// the `emails` rows. `None` for `off`.
#[must_use]
pub fn counted_sql(mode: EmailUniqueness) -> Option<String> {
    let base = "SELECT DISTINCT e.value_lc, e.resource_pk FROM emails e \
        JOIN resources r ON r.tenant_id = e.tenant_id AND r.pk = e.resource_pk \
        WHERE e.tenant_id = ?1 AND r.kind = 'User' AND r.deleted = FALSE \
        AND e.value_lc IS NOT NULL";
    match mode {
        EmailUniqueness::Off => None,
        EmailUniqueness::Any => Some(base.to_owned()),
        EmailUniqueness::Primary => Some(format!(
            "{base} AND (e.is_primary IS TRUE OR NOT EXISTS (SELECT 1 FROM emails o \
             WHERE o.tenant_id = ?1 AND o.resource_pk = e.resource_pk \
             AND o.value_lc IS NOT NULL AND (o.is_primary IS TRUE OR o.value_lc <> e.value_lc)))"
        )),
    }
}

/// The value as `doc` writes it of the folded email `folded` (the folded one when no element
/// has it).
fn as_given(doc: &Value, folded: &str) -> String {
    doc.get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
        .find(|v| scim_proto::filter::fold_case(v) == folded)
        .unwrap_or(folded)
        .to_owned()
}

/// Gives the counted user `pk` the emails `mode` counts in `emails` (of its document `doc`),
/// replacing those it held. [`StoreError::EmailTaken`] when another user of the tenant holds
/// one of them: the caller's transaction must then be rolled back (the error does so).
/// Nothing to do when `mode` is `off`.
///
/// Concurrency: one delete and one insert of the user's rows; the primary key refuses a row
/// another transaction inserted first (PostgreSQL makes the insert wait for that
/// transaction's end).
pub async fn claim<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    mode: EmailUniqueness,
    pk: i64,
    doc: &Value,
    emails: &[EmailKey],
) -> StoreResult<()> {
    if mode.is_off() {
        return Ok(());
    }
    let values = claimed_values(mode, emails);
    let inserted = rows.replace_email_claims(tenant, pk, &values).await?;
    match values.iter().find(|v| !inserted.contains(v)) {
        Some(taken) => Err(StoreError::EmailTaken(as_given(doc, taken))),
        None => Ok(()),
    }
}

/// Of the emails `mode` counts in `emails`, the first another user of the tenant holds, as
/// `doc` writes it: the check before a write that would rather skip than fail (an import).
pub async fn taken<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    mode: EmailUniqueness,
    doc: &Value,
    emails: &[EmailKey],
) -> StoreResult<Option<String>> {
    if mode.is_off() {
        return Ok(None);
    }
    let values = claimed_values(mode, emails);
    if values.is_empty() {
        return Ok(None);
    }
    let held = rows.claimed_emails(tenant, &values).await?;
    Ok(values
        .iter()
        .find(|v| held.contains(v))
        .map(|v| as_given(doc, v)))
}

/// The user `pk` stops counting (it is deprovisioned): its rows go. Nothing to do when `mode`
/// is `off`.
pub async fn release<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    mode: EmailUniqueness,
    pk: i64,
) -> StoreResult<()> {
    if mode.is_off() {
        return Ok(());
    }
    rows.replace_email_claims(tenant, pk, &[]).await?;
    Ok(())
}

/// The tenant's setting changes from `from` to `to`: its rows are rebuilt for `to` (emptied
/// for `off`), unless users already share emails that `to` counts:
/// [`StoreError::EmailDuplicates`] then lists them (the first [`EmailDuplicates::SHOWN`]).
///
/// Concurrency: reads the tenant's emails, then writes its rows; no user of the tenant may be
/// written in between (the caller holds the tenant's write lock where there is no
/// database-wide one).
pub async fn change_mode<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    from: EmailUniqueness,
    to: EmailUniqueness,
) -> StoreResult<()> {
    if from == to {
        return Ok(());
    }
    if !to.is_off() {
        let (total, found) = rows
            .email_duplicates(tenant, to, EmailDuplicates::SHOWN)
            .await?;
        if total > 0 {
            let mut shown: Vec<EmailDuplicate> = Vec::new();
            for (email, id, user_name) in found {
                match shown.last_mut() {
                    Some(d) if d.email == email => d.users.push((id, user_name)),
                    _ => shown.push(EmailDuplicate {
                        email,
                        users: vec![(id, user_name)],
                    }),
                }
            }
            return Err(StoreError::EmailDuplicates(Box::new(EmailDuplicates {
                mode: to,
                total,
                shown,
            })));
        }
    }
    rows.refill_email_claims(tenant, to).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(value: &str, primary: Option<bool>) -> EmailKey {
        EmailKey {
            value: Some(value.to_owned()),
            kind: None,
            primary,
        }
    }

    #[test]
    fn what_each_mode_counts() {
        use EmailUniqueness::{Any, Off, Primary};
        let two = [e("a@x", None), e("b@x", Some(true)), e("b@x", None)];
        assert!(claimed_values(Off, &two).is_empty());
        assert_eq!(claimed_values(Any, &two), ["a@x", "b@x"]);
        assert_eq!(claimed_values(Primary, &two), ["b@x"]);
        // None marked: the one value, even listed twice; several values: none.
        assert_eq!(claimed_values(Primary, &[e("a@x", None)]), ["a@x"]);
        let same = [e("a@x", Some(false)), e("a@x", None)];
        assert_eq!(claimed_values(Primary, &same), ["a@x"]);
        assert!(claimed_values(Primary, &[e("a@x", None), e("b@x", None)]).is_empty());
        assert!(claimed_values(Primary, &[]).is_empty());
        let no_value = EmailKey {
            value: None,
            kind: None,
            primary: Some(true),
        };
        assert_eq!(
            claimed_values(Primary, &[no_value, e("a@x", None)]),
            ["a@x"]
        );
    }

    #[test]
    fn the_taken_value_is_named_as_written() {
        let doc = serde_json::json!({"emails": [{"value": "Ann@X.example"}]});
        assert_eq!(as_given(&doc, "ann@x.example"), "Ann@X.example");
        assert_eq!(as_given(&doc, "bob@x.example"), "bob@x.example");
    }
}
