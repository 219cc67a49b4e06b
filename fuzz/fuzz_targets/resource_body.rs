//! Any bytes as the body of a POST or PUT: the path the server runs it through (JSON parse,
//! the IdP dialect normaliser for the request kind, then resource validation and
//! normalisation, as `roster-server`'s `create` and `replace` do) never panics. And for an
//! accepted body: the stored document it gives is accepted again and normalises to itself
//! (what a later GET returns and a client PUTs back), it survives the store's JSON round trip,
//! and a PUT of the same body over it never trips the `immutable` check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_proto::dialect::{normalize_body, BodyKind, Idp};
use scim_proto::resource::normalize;
use scim_proto::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for idp in Idp::ALL {
            for req in [BodyKind::Create, BodyKind::Replace] {
                let request = normalize_body(idp, req, kind.def(), body.clone(), None).request;
                let Ok(created) = normalize(kind.def(), &request, None) else {
                    continue;
                };
                let again = normalize(kind.def(), &created.doc, None)
                    .unwrap_or_else(|e| panic!("stored {} refused: {e:?}", created.doc));
                assert_eq!(again.doc, created.doc, "normalising the stored document");
                let text = serde_json::to_vec(&created.doc).expect("serialise");
                let back: serde_json::Value = serde_json::from_slice(&text).expect("parse back");
                assert_eq!(back, created.doc, "JSON round trip");
                if let Err(e) = normalize(kind.def(), &request, Some(&created.doc)) {
                    panic!("PUT of the body it was created from refused: {e:?}");
                }
            }
        }
    }
});
