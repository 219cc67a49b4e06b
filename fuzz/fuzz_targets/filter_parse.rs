//! Any text: parsing never panics; a parsed filter prints to text that parses back to the
//! same AST; validation and evaluation against a realistic User never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_proto::filter::parse_filter;
use scim_proto::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    let printed = filter.to_string();
    assert_eq!(
        parse_filter(&printed).ok(),
        Some(filter.clone()),
        "{printed}"
    );
    if let Ok(valid) = filter.validate(ResourceKind::User.def()) {
        let user = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223", "userName": "bjensen", "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "meta": {"resourceType": "User", "created": "2011-08-01T18:29:49.793Z",
                     "lastModified": "2011-08-01T18:29:49.793Z", "version": "W/\"1\""}
        });
        let _ = valid.matches(&user);
    }
});
