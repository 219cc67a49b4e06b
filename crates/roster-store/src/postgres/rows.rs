//! (being ported from ../sqlite/rows.rs)

use serde_json::Value;

use super::backend;
use crate::StoreResult;

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[allow(dead_code)] // used by rows.rs
fn json_text(v: &Value) -> StoreResult<String> {
    serde_json::to_string(v).map_err(backend)
}

#[allow(dead_code)] // used by rows.rs
fn parse_doc(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(backend)
}

/// The stored form of a roles list: a JSON array of strings, sorted, without duplicates.
pub(super) fn parse_roles(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(backend)
}

/// The stored form of a roles list: a JSON array of strings, sorted, without duplicates.
pub(super) fn roles_text(roles: &[String]) -> StoreResult<String> {
    let set: std::collections::BTreeSet<&String> = roles.iter().collect();
    serde_json::to_string(&set).map_err(backend)
}

/// The mapped roles of the groups of `n` users (bound three times): for each way a mapping can
/// select a group, the members' rows (`members_member`), the group by pk (`resources_pk`), and
/// the mapping by its unique `(tenant_id, match_by, match_value)` key. Three exact lookups
/// rather than one join on an `OR`, which a planner can only answer by reading every mapping
/// of the tenant.
pub(super) fn mapped_roles_sql(n: usize) -> String {
    let m = marks(n);
    [
        ("id", "g.id"),
        ("externalId", "g.external_id"),
        ("displayName", "g.display_name_lc"),
    ]
    .iter()
    .map(|(by, column)| {
        format!(
            "SELECT m.member_pk, rm.roles FROM members m \
                 JOIN resources g ON g.pk = m.group_pk \
                 JOIN role_mappings rm ON rm.tenant_id = g.tenant_id \
                 AND rm.match_by = '{by}' AND rm.match_value = {column} \
                 WHERE m.member_pk IN ({m})"
        )
    })
    .collect::<Vec<_>>()
    .join(" UNION ALL ")
}

/// The roles mapped to one group: `(tenant, id)`, `(tenant, externalId)`,
/// `(tenant, displayName folded)`, each an exact lookup of the unique key.
pub(super) const GROUP_MAPPINGS_SQL: &str = "\
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'id' AND match_value = ? \
    UNION ALL \
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'externalId' AND match_value = ? \
    UNION ALL \
    SELECT roles FROM role_mappings WHERE tenant_id = ? AND match_by = 'displayName' AND match_value = ?";
