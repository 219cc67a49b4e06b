//! Any JSON body: parsing and applying a PATCH never panics, and a failed PATCH leaves the
//! document exactly as it was (all operations or none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_proto::patch::{apply_patch, parse_patch};
use scim_proto::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(ops) = parse_patch(&body) else {
        return;
    };
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let original = match kind {
            ResourceKind::User => serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen", "active": true,
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "type": "work", "primary": true},
                           {"value": "b@home.example", "type": "home"}]
            }),
            ResourceKind::Group => serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides"
            }),
        };
        let mut doc = original.clone();
        if apply_patch(kind.def(), &mut doc, &ops).is_err() {
            assert_eq!(doc, original);
        }
    }
});
