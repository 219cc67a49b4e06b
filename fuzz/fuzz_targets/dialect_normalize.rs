//! Any JSON body and any filter text: the IdP dialect normaliser never panics, for every
//! identity provider and request kind, and normalising twice gives the same as once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_proto::dialect::{normalize_body, normalize_filter, patch_needs_current, BodyKind, Idp};
use scim_proto::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for idp in Idp::ALL {
            let once = normalize_filter(idp, text);
            assert_eq!(normalize_filter(idp, &once.request).request, once.request);
        }
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let current = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}]
    });
    for idp in Idp::ALL {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let _ = patch_needs_current(idp, kind.def(), &body);
            for req in [BodyKind::Create, BodyKind::Replace, BodyKind::Patch] {
                let once = normalize_body(idp, req, kind.def(), body.clone(), Some(&current));
                let twice =
                    normalize_body(idp, req, kind.def(), once.request.clone(), Some(&current));
                assert_eq!(twice.request, once.request);
            }
        }
    }
});
