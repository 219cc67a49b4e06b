//! The role catalogue: global (every store on the database sees the same roles), listed by
//! name, a second declaration replaces the description and keeps the creation time.

use super::support::at;
use super::Backend;
use crate::catalogue::CatalogueRole;
use crate::StoreError;

fn role(name: &str, description: Option<&str>, t: i64) -> CatalogueRole {
    CatalogueRole {
        name: name.to_owned(),
        description: description.map(str::to_owned),
        created_at: at(t),
        updated_at: at(t),
    }
}

/// Put, replace, list and remove; a second store on the same database sees the same rows.
pub async fn the_role_catalogue_is_global_and_keeps_its_creation_time(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    let other = db.open().await;
    assert!(s.list_catalogue_roles().await.unwrap().is_empty());
    assert!(s
        .put_catalogue_role(&role("viewer", None, 10))
        .await
        .unwrap());
    assert!(s
        .put_catalogue_role(&role("editor", Some("Edits documents"), 20))
        .await
        .unwrap());
    assert!(!s
        .put_catalogue_role(&role("viewer", Some("Reads only"), 30))
        .await
        .unwrap());
    let all = other.list_catalogue_roles().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["editor", "viewer"]
    );
    assert_eq!(all[1].description.as_deref(), Some("Reads only"));
    assert_eq!(
        all[1].created_at,
        at(10),
        "a replace keeps the creation time"
    );
    assert_eq!(all[1].updated_at, at(30));
    other.remove_catalogue_role("editor").await.unwrap();
    assert!(matches!(
        s.remove_catalogue_role("editor").await,
        Err(StoreError::NotFound)
    ));
    let names: Vec<String> = s
        .list_catalogue_roles()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["viewer"]);
}
