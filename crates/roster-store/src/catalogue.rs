//! The role catalogue: the roles the host app declares, each a name and an optional
//! description. Roles are the app's, the same for every tenant, so the catalogue is global;
//! which of its roles a tenant's IT admin may grant is that tenant's setting
//! (`grantable_roles`), and role mappings and app-assigned roles pick from it (the server's
//! `ops::roles` checks them). The SQL is the same on both backends ([`catalogue_store!`]).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// One role of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueRole {
    /// The role's name, as mappings and users carry it.
    pub name: String,
    /// What the role allows, for the people choosing it.
    pub description: Option<String>,
    /// When it was declared.
    pub created_at: OffsetDateTime,
    /// When its description last changed.
    pub updated_at: OffsetDateTime,
}

/// The role catalogue's storage.
#[async_trait]
pub trait RoleCatalogueStore {
    /// Every role of the catalogue, by name.
    async fn list_catalogue_roles(&self) -> StoreResult<Vec<CatalogueRole>>;
    /// Declares `role`, or replaces the description of the role of that name (its
    /// `created_at` is kept). Answers whether the role is new.
    async fn put_catalogue_role(&self, role: &CatalogueRole) -> StoreResult<bool>;
    /// Removes a role from the catalogue. `NotFound` when it has none of that name. Mappings
    /// and users that carry it keep it (the catalogue only says what may be chosen).
    async fn remove_catalogue_role(&self, name: &str) -> StoreResult<()>;
}

pub(crate) const LIST_SQL: &str =
    "SELECT name, description, created_at, updated_at FROM role_catalogue ORDER BY name";
pub(crate) const EXISTS_SQL: &str = "SELECT COUNT(*) FROM role_catalogue WHERE name = ?";
pub(crate) const UPSERT_SQL: &str =
    "INSERT INTO role_catalogue (name, description, created_at, updated_at) \
     VALUES (?, ?, ?, ?) \
     ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
     updated_at = excluded.updated_at";
pub(crate) const DELETE_SQL: &str = "DELETE FROM role_catalogue WHERE name = ?";

/// A row of `role_catalogue`.
pub(crate) type CatalogueRow = (String, Option<String>, i64, i64);

/// Implements [`RoleCatalogueStore`] for a backend: `$reader` is its read pool, `$write` the
/// method that opens a global write transaction.
macro_rules! catalogue_store {
    ($store:ty, $reader:ident, $write:ident) => {
        #[async_trait::async_trait]
        impl $crate::catalogue::RoleCatalogueStore for $store {
            #[tracing::instrument(skip_all)]
            async fn list_catalogue_roles(
                &self,
            ) -> $crate::StoreResult<Vec<$crate::catalogue::CatalogueRole>> {
                let rows: Vec<$crate::catalogue::CatalogueRow> =
                    db::query_as($crate::catalogue::LIST_SQL)
                        .fetch_all(&self.$reader)
                        .await
                        .map_err(backend)?;
                rows.into_iter()
                    .map(|(name, description, created, updated)| {
                        Ok($crate::catalogue::CatalogueRole {
                            name,
                            description,
                            created_at: from_ms(created)?,
                            updated_at: from_ms(updated)?,
                        })
                    })
                    .collect()
            }

            #[tracing::instrument(skip_all)]
            async fn put_catalogue_role(
                &self,
                role: &$crate::catalogue::CatalogueRole,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.$write().await?;
                let (n,): (i64,) = db::query_as($crate::catalogue::EXISTS_SQL)
                    .bind(&role.name)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                db::query($crate::catalogue::UPSERT_SQL)
                    .bind(&role.name)
                    .bind(&role.description)
                    .bind(to_ms(role.created_at))
                    .bind(to_ms(role.updated_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                Ok(n == 0)
            }

            #[tracing::instrument(skip_all)]
            async fn remove_catalogue_role(&self, name: &str) -> $crate::StoreResult<()> {
                let mut tx = self.$write().await?;
                let done = db::query($crate::catalogue::DELETE_SQL)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                tx.commit().await.map_err(backend)
            }
        }
    };
}

pub(crate) use catalogue_store;
