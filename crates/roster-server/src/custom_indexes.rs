//! Keeping each tenant's custom-attribute indexes as its declarations say (see
//! `roster_store::domain::custom_index` for the index itself).
//!
//! A change of declarations (a tenant's or the global ones) syncs the indexes of the tenants it
//! touches at once and starts their backfill in the background; the periodic jobs
//! `custom-index-backfill` (resumes builds after a restart or on another node) and
//! `custom-index-reconcile` (catches tenants created after a global declaration, and changes
//! made by another node's release) do the rest. A build never blocks a request: until it is
//! ready, filters and sorts on the attribute are evaluated in memory as before.

use std::time::Duration;

use roster_store::{Store, StoreResult, Tenant};

use crate::AppState;

/// Resources indexed per backfill transaction: short enough that a tenant's writes, which
/// wait for it, hardly notice.
const BATCH: u64 = 200;

/// Longest one run of the backfill job works before it yields to the next period.
const RUN_BUDGET: Duration = Duration::from_secs(20);

/// The indexes `t`'s effective declarations ask for.
fn wanted(t: &Tenant) -> Vec<roster_store::IndexSpec> {
    roster_store::indexed_attributes(&t.custom_schemas())
}

/// Makes `t`'s indexes those its declarations ask for (a read, and a write only when they
/// differ). An operator's change of declarations (`retry_failed`) also starts failed builds
/// over; the periodic reconciliation does not, so that a failed build is not repeated every
/// minute. Returns whether anything changed (a build then waits for the backfill).
///
/// # Errors
/// As the store's.
pub async fn sync(store: &dyn Store, t: &Tenant, retry_failed: bool) -> StoreResult<bool> {
    let wanted = wanted(t);
    let current = store.custom_indexes(&t.id).await?;
    let failed = current
        .iter()
        .any(|ix| ix.state == roster_store::IndexState::Failed);
    if roster_store::custom_indexes_match(&current, &wanted) && !(retry_failed && failed) {
        return Ok(false);
    }
    store
        .sync_custom_indexes(&t.id, &wanted, retry_failed)
        .await
}

/// Builds the tenant's building indexes to the end (or for [`RUN_BUDGET`]), a batch per
/// transaction. Returns the resources indexed.
///
/// # Errors
/// As the store's.
pub async fn backfill(store: &dyn Store, tenant: &str) -> StoreResult<u64> {
    let started = std::time::Instant::now();
    let mut done = 0;
    while started.elapsed() < RUN_BUDGET {
        let n = store.backfill_custom_index(tenant, BATCH).await?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Starts `tenant`'s backfill in the background (after a change of its declarations), so the
/// index is ready without waiting for the periodic job.
pub fn start_backfill(state: &AppState, tenant: &str) {
    let store = state.store.clone();
    let tenant = tenant.to_owned();
    tokio::spawn(async move {
        if let Err(e) = backfill(store.as_ref(), &tenant).await {
            tracing::warn!(tenant, error = %e, "building a custom-attribute index failed; the periodic job retries");
        }
    });
}

/// One run of the job `custom-index-backfill`: every tenant with an index being built.
pub async fn backfill_job(state: AppState) {
    let tenants = match state.store.building_custom_indexes().await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "listing the custom-attribute indexes being built failed");
            return;
        }
    };
    for tenant in tenants {
        match backfill(state.store.as_ref(), &tenant).await {
            Ok(n) => tracing::info!(tenant, resources = n, "custom-attribute index backfill"),
            Err(e) => tracing::error!(tenant, error = %e, "custom-attribute index backfill failed"),
        }
    }
}

/// One run of the job `custom-index-reconcile`: every live tenant's indexes made what its
/// declarations ask for (one read per tenant when nothing changed).
pub async fn reconcile_job(state: AppState) {
    let mut after: Option<String> = None;
    loop {
        let page = match state.store.list_tenants_page(after.as_deref(), 200).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "listing tenants to reconcile their indexes failed");
                return;
            }
        };
        let Some(last) = page.last().map(|t| t.id.clone()) else {
            return;
        };
        for t in &page {
            match sync(state.store.as_ref(), t, false).await {
                Ok(true) => start_backfill(&state, &t.id),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(tenant = t.id, error = %e, "syncing custom-attribute indexes failed");
                }
            }
        }
        after = Some(last);
    }
}
