//! The store conformance suite: one set of tests, written against [`Store`] and its supertraits
//! only, that every backend must pass.
//!
//! A backend runs it by implementing [`Backend`] (how to make a fresh, empty store, and a
//! database that several stores share, as the server and the `roster` CLI share one) and
//! invoking [`conformance_tests!`](crate::conformance_tests) in one of its test modules:
//!
//! ```ignore
//! // In the backend crate, with roster-store's `conformance` feature on in [dev-dependencies]
//! // and tokio (macros, rt) as a dev-dependency:
//! struct Postgres;
//!
//! #[async_trait::async_trait]
//! impl roster_store::conformance::Backend for Postgres {
//!     async fn fresh(&self) -> std::sync::Arc<dyn roster_store::Store> { /* a new database */ }
//!     async fn shared(&self) -> Box<dyn roster_store::conformance::SharedDb> { /* … */ }
//! }
//!
//! mod conformance {
//!     roster_store::conformance_tests!(super::Postgres);
//! }
//! ```
//!
//! The macro expands to one `#[tokio::test]` per conformance test, in one module per area
//! (`conformance::directory::tenants_and_tokens`, …), so that each test runs, fails and can be
//! filtered on its own. The tests take the time as a parameter ([`support::at`]) and never
//! assert on durations.
//!
//! What stays beside a backend, not here: checks of how it does things rather than what it
//! does (query plans, pragmas, its SQL translation, bulk loads through its own connections).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // A failed unwrap is a failed test.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

pub mod app;
pub mod catalogue;
pub mod custom;
pub mod delivery;
pub mod directory;
pub mod emails;
pub mod health;
pub mod listing;
pub mod lists;
pub mod ops;
pub mod outbox;
pub mod review;
pub mod support;

/// A store implementation under test.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A new store on a new, empty database of its own (no tenants, no rows). An in-memory
    /// database is fine.
    async fn fresh(&self) -> Arc<dyn Store>;
    /// A new, empty database that several stores open at once, as the server and the `roster`
    /// CLI do (separate connection pools, as separate processes would have). Dropping it
    /// removes the database.
    async fn shared(&self) -> Box<dyn SharedDb>;
}

/// A database that several stores share (see [`Backend::shared`]).
#[async_trait]
pub trait SharedDb: Send + Sync {
    /// Opens one more store on this database; the first call creates its schema.
    async fn open(&self) -> Arc<dyn Store>;
}

/// Expands to one `#[tokio::test]` per conformance test, run against `$backend`: an expression
/// of a type implementing [`Backend`], evaluated in each test. The tests are generated in one
/// child module per area, which glob-imports the invoking module: name the backend by a name in
/// scope there or by an absolute path (`crate::…`), not by `super::…`. The invoking crate needs
/// tokio with the `macros` and `rt` features.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::__conformance_tests! { $backend;
            directory {
                tenants_and_tokens,
                crud_round_trip_survives_reopening,
                email_rows_follow_replaces,
                user_name_is_unique_case_insensitively,
                indexed_values_have_a_bound,
                deprovision_then_restore,
                deprovisioned_user_is_inactive,
                membership_operations,
                tenants_are_isolated,
                a_leaving_user_leaves_its_groups_first,
                a_deprovisioned_users_personal_data_is_erased,
                writers_and_readers_share_a_database,
            }
            listing {
                filters_select_the_expected_rows,
                filters_agree_with_the_protocol_evaluator,
                index_pagination,
                in_memory_candidates_are_capped,
                sort_puts_missing_values_last_ascending_first_descending,
                cursor_pagination_is_stable_under_writes,
                cursor_belongs_to_its_query,
            }
            outbox {
                seq_is_per_tenant_gap_free_and_increasing,
                many_events_of_one_write_get_consecutive_seqs,
                concurrent_writers_get_distinct_consecutive_seqs,
                member_events_list_the_rows_that_really_changed_in_parts,
                app_group_member_events_are_the_net_change,
                caller_events_restore_and_tokens,
                snapshot_is_consistent_with_its_seq,
                subscribers_wake_on_commits_with_events,
            }
            ops {
                webhook_streams_start_at_the_current_seq_and_redeliver,
                webhook_secrets_are_replaced_only_if_unchanged,
                provisioning_log_filters_pages_and_prunes,
                meta_values_are_shared_replaced_and_cleared,
                webhook_streams_are_leased_to_one_node_at_a_time,
                periodic_jobs_run_once_per_period_across_nodes,
                console_once_values_are_taken_once,
            }
            app {
                the_window_slides_and_counts_each_user_once,
                an_update_carries_its_admission,
                a_delete_carries_its_admission,
                tripped_waits_for_an_operator_and_decisions_end_after_a_quiet_window,
                users_created_after_the_window_opened_are_not_counted_and_off_means_off,
                login_lookup_prefers_live_managed_active_records,
                effective_roles_follow_mappings_and_status,
                search_matches_user_name_or_email_prefixes,
                member_counts_follow_every_membership_change,
            }
            emails {
                each_mode_refuses_what_it_counts,
                turning_it_on_over_duplicates_is_refused_with_the_list,
                concurrent_creates_of_one_email_admit_one,
            }
            custom {
                custom_indexes_answer_like_the_evaluator,
                custom_indexes_follow_writes,
                an_index_over_values_too_long_fails_until_they_are_shortened,
            }
            delivery {
                attempts_are_listed_newest_first_and_pruned_per_endpoint,
                pause_keeps_positions_and_lag_counts_events_after_them,
            }
            health {
                the_hourly_rollup_counts_rows_and_reads_per_hour,
                tenants_health_pages_by_id_and_reports_each_field,
                provisioning_log_filters_by_class_method_and_text,
            }
            catalogue {
                the_role_catalogue_is_global_and_keeps_its_creation_time,
            }
            review {
                held_events_wait_for_approval_and_follow_every_seen_seq,
                a_discarded_review_puts_the_directory_back_and_disables_scim,
                a_review_survives_reopening_and_is_per_tenant,
            }
            lists {
                contains_search_follows_writes_and_stays_in_its_tenant,
                lists_sort_page_both_ways_and_count,
                group_members_come_in_name_order_and_follow_renames,
            }
        }
    };
}

/// The expansion of [`conformance_tests!`]: a module per area, a test per name.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($backend:expr; $($area:ident { $($name:ident),* $(,)? })*) => {
        $(
            mod $area {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[tokio::test]
                    async fn $name() {
                        $crate::conformance::$area::$name(&$backend).await;
                    }
                )*
            }
        )*
    };
}
