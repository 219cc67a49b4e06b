//! Tests for the filter module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::schema::{ResourceKind, TypeDef};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::error::ScimType;
use crate::schema::ENTERPRISE_USER_SCHEMA;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn p(s: &str) -> AttrPath {
    parse::parse_attr_path(s).unwrap()
}

fn cmp(path: &str, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(p(path), op, v)
}

fn s(v: &str) -> CompValue {
    CompValue::Str(v.to_owned())
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

fn vp(path: &str, f: Filter) -> Filter {
    Filter::ValuePath(p(path), Box::new(f))
}

fn pr(path: &str) -> Filter {
    Filter::Present(p(path))
}

fn parse_err(input: &str) -> String {
    let e = parse_filter(input).expect_err(input);
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{input}");
    e.detail
}

// ---------------------------------------------------------------- parsing

#[test]
fn rfc_examples_parse() {
    use CompareOp::*;
    let cases: Vec<(&str, Filter)> = vec![
        ("userName eq \"bjensen\"", cmp("userName", Eq, s("bjensen"))),
        (
            "name.familyName co \"O'Malley\"",
            cmp("name.familyName", Co, s("O'Malley")),
        ),
        ("userName sw \"J\"", cmp("userName", Sw, s("J"))),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
            Filter::Compare(
                AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
                    attr: "userName".into(),
                    sub_attr: None,
                },
                Sw,
                s("J"),
            ),
        ),
        ("title pr", pr("title")),
        (
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
            cmp("meta.lastModified", Gt, s("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
            cmp("meta.lastModified", Ge, s("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified lt \"2011-05-13T04:42:34Z\"",
            cmp("meta.lastModified", Lt, s("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified le \"2011-05-13T04:42:34Z\"",
            cmp("meta.lastModified", Le, s("2011-05-13T04:42:34Z")),
        ),
        (
            "title pr and userType eq \"Employee\"",
            and(pr("title"), cmp("userType", Eq, s("Employee"))),
        ),
        (
            "title pr or userType eq \"Intern\"",
            or(pr("title"), cmp("userType", Eq, s("Intern"))),
        ),
        (
            "schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
            cmp("schemas", Eq, s(ENT)),
        ),
        (
            "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
            and(
                cmp("userType", Eq, s("Employee")),
                or(
                    cmp("emails", Co, s("example.com")),
                    cmp("emails.value", Co, s("example.org")),
                ),
            ),
        ),
        (
            "userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")",
            and(
                cmp("userType", Ne, s("Employee")),
                not(or(
                    cmp("emails", Co, s("example.com")),
                    cmp("emails.value", Co, s("example.org")),
                )),
            ),
        ),
        (
            "userType eq \"Employee\" and (emails.type eq \"work\")",
            and(
                cmp("userType", Eq, s("Employee")),
                cmp("emails.type", Eq, s("work")),
            ),
        ),
        (
            "userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]",
            and(
                cmp("userType", Eq, s("Employee")),
                vp(
                    "emails",
                    and(
                        cmp("type", Eq, s("work")),
                        cmp("value", Co, s("@example.com")),
                    ),
                ),
            ),
        ),
        (
            "emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
            or(
                vp(
                    "emails",
                    and(
                        cmp("type", Eq, s("work")),
                        cmp("value", Co, s("@example.com")),
                    ),
                ),
                vp(
                    "ims",
                    and(cmp("type", Eq, s("xmpp")), cmp("value", Co, s("@foo.com"))),
                ),
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_filter(input).unwrap(), want, "{input}");
        // And the canonical printing parses back to the same tree.
        let printed = want.to_string();
        assert_eq!(parse_filter(&printed).unwrap(), want, "{printed}");
    }
}

#[test]
fn keywords_and_operators_are_case_insensitive() {
    let f = parse_filter("userName EQ \"x\" AND Title PR Or NOT(active Eq TRUE)").unwrap();
    assert_eq!(
        f,
        or(
            and(cmp("userName", CompareOp::Eq, s("x")), pr("Title")),
            not(cmp("active", CompareOp::Eq, CompValue::Bool(true)))
        )
    );
    assert_eq!(
        parse_filter("x eq NULL").unwrap(),
        cmp("x", CompareOp::Eq, CompValue::Null)
    );
    assert_eq!(
        parse_filter("x eq False").unwrap(),
        cmp("x", CompareOp::Eq, CompValue::Bool(false))
    );
}

#[test]
fn precedence_and_associativity() {
    let (a, b, c, d) = (pr("a"), pr("b"), pr("c"), pr("d"));
    assert_eq!(
        parse_filter("a pr or b pr and c pr").unwrap(),
        or(a.clone(), and(b.clone(), c.clone()))
    );
    assert_eq!(
        parse_filter("a pr and b pr or c pr").unwrap(),
        or(and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse_filter("a pr and b pr and c pr").unwrap(),
        and(and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse_filter("a pr or b pr or c pr").unwrap(),
        or(or(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse_filter("a pr and (b pr or c pr) and d pr").unwrap(),
        and(and(a.clone(), or(b.clone(), c.clone())), d.clone())
    );
    assert_eq!(
        parse_filter("not (a pr) and b pr").unwrap(),
        and(not(a.clone()), b.clone())
    );
    assert_eq!(
        parse_filter("not(a pr or b pr)").unwrap(),
        not(or(a.clone(), b.clone()))
    );
    assert_eq!(parse_filter("((a pr))").unwrap(), a);
    assert_eq!(
        parse_filter("  a pr\tand\nb pr  ").unwrap(),
        and(pr("a"), b)
    );
}

#[test]
fn display_is_canonical_and_minimal() {
    let cases = [
        ("a pr and b pr and c pr", "a pr and b pr and c pr"),
        ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
        ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
        ("a pr or (b pr and c pr)", "a pr or b pr and c pr"),
        ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
        ("NOT ( a PR )", "not (a pr)"),
        ("x EQ \"a\\\"b\\\\c\\u00e9\"", "x eq \"a\\\"b\\\\cé\""),
        ("x eq \"tab\\there\"", "x eq \"tab\\there\""),
        ("x GE 1.5e3", "x ge 1500.0"),
        ("x lt -7", "x lt -7"),
        (
            "emails[type eq \"work\" or not (primary eq true)]",
            "emails[type eq \"work\" or not (primary eq true)]",
        ),
    ];
    for (input, want) in cases {
        let f = parse_filter(input).unwrap();
        assert_eq!(f.to_string(), want, "{input}");
        assert_eq!(parse_filter(want).unwrap(), f);
    }
}

#[test]
fn string_escapes() {
    let f = parse_filter(r#"x eq "q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 ü""#).unwrap();
    assert_eq!(
        f,
        cmp("x", CompareOp::Eq, s("q\" b\\ s/ \u{8}\u{c}\n\r\t é 😀 ü"))
    );
}

#[test]
fn numbers() {
    let num = |input: &str| match parse_filter(&format!("x eq {input}")).unwrap() {
        Filter::Compare(_, _, CompValue::Number(n)) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(num("0").as_u64(), Some(0));
    assert_eq!(num("-12").as_i64(), Some(-12));
    assert_eq!(num("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(num("1.25").as_f64(), Some(1.25));
    assert_eq!(num("2E-2").as_f64(), Some(0.02));
    assert!(num("1e2").is_f64());
    for bad in ["01", "1.", ".5", "1e", "--1", "1.2.3", "+1", "0x10", "-"] {
        let d = parse_err(&format!("x eq {bad}"));
        assert!(d.contains("invalid number"), "{bad}: {d}");
    }
    assert!(parse_err("x eq 1e400").contains("out of range"));
}

#[test]
fn attribute_paths() {
    assert_eq!(
        p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
        AttrPath {
            urn: Some(ENT.into()),
            attr: "manager".into(),
            sub_attr: Some("value".into()),
        }
    );
    assert_eq!(
        p("members.$ref"),
        AttrPath {
            urn: None,
            attr: "members".into(),
            sub_attr: Some("$ref".into()),
        }
    );
    assert_eq!(p("x509Certificates.value").attr, "x509Certificates");
    assert_eq!(p("URN:foo:bar:attr").urn.as_deref(), Some("URN:foo:bar"));
    for bad in [
        "a.b.c", "1abc", "a.", "foo:bar", "urn:x:", "urn:name", "a b", "na!me", "é",
    ] {
        assert!(parse::parse_attr_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn error_details_point_at_the_problem() {
    let cases: [(&str, &str); 22] = [
        ("", "at character 0: empty filter"),
        ("   ", "at character 3: empty filter"),
        (
            "userName equals \"x\"",
            "invalid filter at character 9: expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after \"userName\", found \"equals\"",
        ),
        ("userName eq", "at character 11: expected a value"),
        ("userName eq bjensen", "strings must be in double quotes"),
        ("userName eq \"bjensen", "at character 12: unterminated string"),
        ("userName eq \"a\\qb\"", "at character 14: invalid escape \"\\q\""),
        ("userName eq \"\\u12\"", "invalid unicode escape"),
        ("userName eq \"\\ud800\"", "lone surrogate"),
        ("userName eq \"a\nb\"", "control character U+000A"),
        ("(userName pr", "at character 12: expected \"and\", \"or\" or \")\" to close the \"(\" at character 0, found end of input"),
        ("userName pr)", "at character 11: unbalanced parentheses"),
        ("emails[type pr", "to close the \"[\" at character 6"),
        ("emails[type pr]]", "unbalanced brackets"),
        ("userName pr foo", "at character 12: expected \"and\", \"or\" or end of input, found \"foo\""),
        ("title pr \"x\"", "at character 9: unexpected value \"x\" after \"pr\": pr takes no value"),
        ("title pr true", "pr takes no value"),
        ("not userName pr", "at character 4: expected \"(\" after \"not\""),
        ("userName eq \"x\" and", "at character 19: expected an attribute path, \"(\" or \"not\", found end of input"),
        ("emails[value co \"x\"].type eq \"y\"", "found \".type\""),
        ("emails[ims[type pr]]", "value filters cannot be nested"),
        ("name.givenName[x pr]", "must follow a complex attribute"),
    ];
    for (input, want) in cases {
        let d = parse_err(input);
        assert!(d.contains(want), "{input:?}: {d}");
    }
    // Positions count characters, not bytes.
    let d = parse_err("displayName eq \"é\" nope");
    assert!(d.contains("at character 19"), "{d}");
}

#[test]
fn limits() {
    let deep = format!("{}a pr{}", "(".repeat(64), ")".repeat(64));
    assert!(parse_filter(&deep).is_ok());
    let deeper = format!("{}a pr{}", "(".repeat(65), ")".repeat(65));
    assert!(parse_err(&deeper).contains("nested too deeply"));
    let nots = format!("{}a pr{}", "not (".repeat(100), ")".repeat(100));
    assert!(parse_err(&nots).contains("nested too deeply"));
    let huge = "(".repeat(SCIM_FILTER_MAX_LEN + 1);
    assert!(parse_err(&huge).contains("at most 16384"));
    let many = vec!["a pr"; SCIM_FILTER_MAX_TERMS + 1].join(" or ");
    assert!(parse_err(&many).contains("too many expressions"));
    // The longest chain the parser accepts survives printing, validation and evaluation.
    let ok = vec!["userName eq \"x\""; SCIM_FILTER_MAX_TERMS].join(" and ");
    let f = parse_filter(&ok).unwrap();
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
    let v = f.validate(ResourceKind::User.def()).unwrap();
    assert!(v.matches(&json!({"userName": "X"})));
    let nested = format!(
        "{}userName pr{}",
        "emails[value pr] or not (".repeat(31),
        ")".repeat(31)
    );
    let f = parse_filter(&nested).unwrap();
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
    assert!(f
        .validate(ResourceKind::User.def())
        .unwrap()
        .matches(&user()));
    // The deepest trees the parser accepts, in every shape, survive the recursive walks.
    for (open, close) in [("userName pr and (", ")"), ("not (", ")"), ("((", "))")] {
        let levels = if open == "((" { 32 } else { 64 };
        let mid = vec!["id pr"; 200].join(" or ");
        let text = format!("{}{mid}{}", open.repeat(levels), close.repeat(levels));
        let f = parse_filter(&text).unwrap();
        assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
        let _ = f
            .validate(ResourceKind::User.def())
            .unwrap()
            .matches(&user());
    }
}

// ---------------------------------------------------------------- PATCH paths

#[test]
fn patch_paths() {
    let pp = |s: &str| parse_path(s).unwrap();
    assert_eq!(
        pp("members"),
        PatchPath {
            attr: p("members"),
            filter: None,
            sub_attr: None
        }
    );
    assert_eq!(pp("name.givenName").attr, p("name.givenName"));
    assert_eq!(
        pp("members[value eq \"2819c223\"]"),
        PatchPath {
            attr: p("members"),
            filter: Some(cmp("value", CompareOp::Eq, s("2819c223"))),
            sub_attr: None
        }
    );
    assert_eq!(
        pp("emails[type eq \"work\"].value"),
        PatchPath {
            attr: p("emails"),
            filter: Some(cmp("type", CompareOp::Eq, s("work"))),
            sub_attr: Some("value".into())
        }
    );
    assert_eq!(
        pp("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").attr,
        p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
    );
    let bare = pp(ENT);
    assert_eq!(
        bare.attr.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0")
    );
    assert_eq!(bare.attr.attr, "User");
    for s in [
        "members",
        "emails[type eq \"work\"].value",
        "members[value eq \"a\" or not (type eq \"User\")]",
    ] {
        assert_eq!(pp(s).to_string(), s);
    }
}

#[test]
fn patch_path_errors() {
    let cases = [
        ("", "invalid path at character 0: empty path"),
        (
            "emails[type eq \"work\"",
            "to close the \"[\" at character 6",
        ),
        (
            "emails[type eq \"work\"] .value",
            "at character 23: no space is allowed between \"]\" and \".value\"",
        ),
        (
            "emails[type eq \"work\"].value.x",
            "at most one sub-attribute",
        ),
        (
            "emails[type eq \"work\"].value x",
            "expected end of input after \".value\"",
        ),
        ("emails[type eq \"work\"].", "expected a sub-attribute name"),
        (
            "name givenName",
            "at character 5: expected \"[\" or end of input",
        ),
        ("emails[type equals \"work\"]", "expected an operator"),
        ("\"emails\"", "expected an attribute path"),
        ("a.b.c", "at most one sub-attribute"),
    ];
    for (input, want) in cases {
        let e = parse_path(input).expect_err(input);
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{input}");
        assert!(e.detail.contains(want), "{input:?}: {}", e.detail);
    }
}

// ---------------------------------------------------------------- property tests

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
        1 => Just("$ref".to_owned()),
    ]
}

fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("urn:ietf:params:scim:schemas:core:2.0:User".to_owned()),
        Just(ENT.to_owned()),
        "(urn|URN|Urn):[a-z0-9]{1,5}(:[a-zA-Z0-9.-]{1,6}){0,3}",
    ]
}

fn attr_path(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
    (
        proptest::option::of(urn()),
        name(),
        proptest::option::weighted(0.4, name()),
    )
        .prop_map(move |(urn, attr, sub_attr)| AttrPath {
            urn,
            attr,
            sub_attr: sub_attr.filter(|_| allow_sub),
        })
        // `not` at the start of an expression is the keyword.
        .prop_filter("reserved", |p| {
            p.urn.is_some() || p.sub_attr.is_some() || !p.attr.eq_ignore_ascii_case("not")
        })
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::Str),
        "[\"\\\\a-z \\u{e9}\\u{1F600}\\t\\n]{0,8}".prop_map(CompValue::Str),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Co),
        Just(CompareOp::Sw),
        Just(CompareOp::Ew),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
    ]
}

fn tree(
    leaf: impl Strategy<Value = Filter> + Clone + 'static,
) -> impl Strategy<Value = Filter> + Clone {
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
        ]
    })
}

fn attr_exp(allow_sub: bool) -> impl Strategy<Value = Filter> + Clone {
    prop_oneof![
        attr_path(allow_sub).prop_map(Filter::Present),
        (attr_path(allow_sub), op(), comp_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let value_path = (attr_path(false), tree(attr_exp(true)))
        .prop_map(|(p, f)| Filter::ValuePath(p, Box::new(f)));
    tree(prop_oneof![3 => attr_exp(true), 1 => value_path])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_round_trips(f in filter()) {
        let text = f.to_string();
        prop_assert_eq!(parse_filter(&text), Ok(f), "{}", text);
    }

    #[test]
    fn parse_filter_never_panics(input in any::<String>()) {
        let _ = parse_filter(&input);
        let _ = parse_path(&input);
    }

    #[test]
    fn parse_filter_never_panics_on_filter_like_input(
        input in "[ a-zA-Z0-9:.$()\\[\\]\"\\\\-]{0,40}|((not|and|or|eq|pr|\\(|\\)|\\[|\\]|\"|\\\\u|é|x|[ ]|urn:|\\.|:|1e9|-){0,30})"
    ) {
        if let Ok(f) = parse_filter(&input) {
            prop_assert_eq!(parse_filter(&f.to_string()), Ok(f.clone()));
            let _ = f.validate(ResourceKind::User.def()).map(|v| v.matches(&user()));
        }
        let _ = parse_path(&input);
    }
}

// ---------------------------------------------------------------- validation

fn valid(kind: TypeDef, input: &str) -> ValidFilter {
    parse_filter(input)
        .unwrap()
        .validate(kind)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
}

fn invalid(kind: TypeDef, input: &str) -> String {
    let e = parse_filter(input)
        .unwrap()
        .validate(kind)
        .expect_err(input);
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    e.detail
}

#[test]
fn validate_canonicalises_paths() {
    let u = ResourceKind::User.def();
    let cases = [
        ("USERNAME eq \"x\"", "userName eq \"x\""),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
            "userName sw \"J\"",
        ),
        (
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.GIVENNAME pr",
            "name.givenName pr",
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:id eq \"1\"",
            "id eq \"1\"",
        ),
        (
            "employeeNumber eq \"42\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"42\"",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:MANAGER.value eq \"m\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
        ),
        (
            "emails co \"example.com\"",
            "emails.value co \"example.com\"",
        ),
        ("emails pr", "emails pr"),
        ("Emails[TYPE eq \"work\"]", "emails[type eq \"work\"]"),
        (
            "meta.LASTMODIFIED gt \"2011-05-13T04:42:34Z\"",
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
        ),
        ("SCHEMAS eq \"x\"", "schemas eq \"x\""),
        (
            "not (Active eq true) or X509CERTIFICATES pr",
            "not (active eq true) or x509Certificates pr",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(valid(u, input).filter().to_string(), want, "{input}");
    }
    let v = valid(u, "employeeNumber pr");
    assert_eq!(v.kind(), u.kind);
    assert_eq!(
        v.filter(),
        &Filter::Present(AttrPath {
            urn: Some(ENTERPRISE_USER_SCHEMA.into()),
            attr: "employeeNumber".into(),
            sub_attr: None
        })
    );
    assert_eq!(
        valid(ResourceKind::Group.def(), "MEMBERS eq \"abc\"")
            .filter()
            .to_string(),
        "members.value eq \"abc\""
    );
}

#[test]
fn validate_rejects_with_clear_details() {
    let u = ResourceKind::User.def();
    let cases = [
        ("foo eq \"x\"", "unknown attribute \"foo\" for User"),
        ("name.nope pr", "unknown attribute \"name.nope\" for User"),
        ("members pr", "unknown attribute \"members\" for User"),
        (
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr",
            "unknown attribute",
        ),
        (
            "active gt true",
            "operator \"gt\" cannot be used with \"active\", which is a boolean; use eq, ne",
        ),
        ("active co true", "cannot be used with \"active\""),
        (
            "meta.created co \"2011\"",
            "operator \"co\" cannot be used with \"meta.created\", which is a dateTime",
        ),
        (
            "active eq \"true\"",
            "\"active\" is a boolean; compare it with true or false, not \"true\"",
        ),
        (
            "userName eq 42",
            "\"userName\" is a string; compare it with a quoted string, not 42",
        ),
        (
            "meta.created gt \"yesterday\"",
            "\"yesterday\" is not an RFC 3339 timestamp",
        ),
        (
            "meta.created gt 5",
            "compare it with a quoted RFC 3339 timestamp",
        ),
        (
            "emails.primary eq \"yes\"",
            "\"emails.primary\" is a boolean",
        ),
        ("name eq \"x\"", "\"name\" is complex and has no \"value\""),
        (
            "userName gt null",
            "null can only be compared with eq or ne",
        ),
        ("password eq \"secret\"", "never returned"),
        (
            "userName[value eq \"x\"]",
            "\"userName\" is not a complex attribute",
        ),
        (
            "emails[nope eq \"x\"]",
            "unknown sub-attribute \"nope\" of \"emails\"",
        ),
        (
            "emails[value.x eq \"x\"]",
            "inside \"emails[…]\", paths name one of its sub-attributes",
        ),
        ("emails[primary eq 1]", "\"primary\" is a boolean"),
    ];
    for (input, want) in cases {
        let d = invalid(u, input);
        assert!(d.contains(want), "{input}: {d}");
    }
    assert!(invalid(ResourceKind::Group.def(), "userName pr").contains("for Group"));
}

#[test]
fn value_filter_validation_and_matching() {
    let u = ResourceKind::User.def();
    let inner = parse_filter("TYPE eq \"Work\" and primary eq true").unwrap();
    let v = validate_value_filter(&inner, u, &p("EMAILS")).unwrap();
    assert_eq!(
        v.filter().to_string(),
        "type eq \"Work\" and primary eq true"
    );
    assert_eq!(v.outer(), Some(&p("emails")));
    assert!(v.matches(&json!({"value": "a@x", "type": "WORK", "primary": true})));
    assert!(!v.matches(&json!({"value": "a@x", "type": "work"})));
    assert!(!v.matches(&json!({"value": "a@x", "type": "home", "primary": true})));

    let g = ResourceKind::Group.def();
    let m = validate_value_filter(
        &parse_filter("value eq \"2819c223\"").unwrap(),
        g,
        &p("members"),
    )
    .unwrap();
    assert!(m.matches(&json!({"value": "2819c223", "type": "User"})));
    // members.value is caseExact.
    assert!(!m.matches(&json!({"value": "2819C223"})));

    let ext = validate_value_filter(
        &parse_filter("value eq \"m1\"").unwrap(),
        u,
        &p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
    )
    .unwrap();
    assert_eq!(
        ext.outer().and_then(|o| o.urn.as_deref()),
        Some(ENTERPRISE_USER_SCHEMA)
    );
    assert!(ext.matches(&json!({"value": "m1"})));

    for (outer, f, want) in [
        ("userName", "value eq \"x\"", "not a complex attribute"),
        ("emails.value", "value eq \"x\"", "not a complex attribute"),
        ("nope", "value eq \"x\"", "unknown attribute \"nope\""),
        ("emails", "display gt 3", "is a string"),
        ("emails", "emails[type pr]", "cannot be nested"),
    ] {
        let e = validate_value_filter(&parse_filter(f).unwrap(), u, &p(outer)).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(e.detail.contains(want), "{outer} {f}: {}", e.detail);
    }
}

// ---------------------------------------------------------------- evaluation

fn user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENT
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen-ext",
        "userName": "BJensen@Example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "nickName": "",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjEL"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22.000Z",
            "lastModified": "2011-05-13T04:42:34.000Z",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "version": "W/\"a330bc54f0671c9\""
        },
        ENT: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        }
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "User"}
        ],
        "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn check_matches(kind: TypeDef, doc: &Value, cases: &[(&str, bool)]) {
    for (input, want) in cases {
        let v = valid(kind, input);
        assert_eq!(v.matches(doc), *want, "{input} (canonical: {})", v.filter());
        // The canonical filter means the same thing.
        let again = valid(kind, &v.filter().to_string());
        assert_eq!(again.matches(doc), *want, "canonical of {input}");
    }
}

#[test]
fn evaluates_against_a_user() {
    check_matches(
        ResourceKind::User.def(),
        &user(),
        &[
            // caseExact: false attributes fold case on both sides.
            ("userName eq \"bjensen@example.com\"", true),
            ("USERNAME EQ \"BJENSEN@EXAMPLE.COM\"", true),
            ("userName sw \"bJ\"", true),
            ("userName ew \"EXAMPLE.COM\"", true),
            ("userName co \"@exa\"", true),
            ("userName eq \"bjensen\"", false),
            ("userName gt \"a\"", true),
            ("userName lt \"a\"", false),
            ("userName ge \"bjensen@example.com\"", true),
            ("userName le \"bjensen@example.com\"", true),
            // caseExact: true.
            ("externalId eq \"BJensen-ext\"", true),
            ("externalId eq \"bjensen-ext\"", false),
            ("id eq \"2819c223-7f76-453a-919d-413861904646\"", true),
            ("id eq \"2819C223-7F76-453A-919D-413861904646\"", false),
            ("id sw \"2819\"", true),
            ("name.familyName co \"O'Malley\"", true),
            ("name.familyName eq \"o'malley\"", true),
            ("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"b\"", true),
            // Multi-valued: any value.
            ("emails co \"example.com\"", true),
            ("emails.value co \"jensen.org\"", true),
            ("emails.value eq \"BABS@JENSEN.ORG\"", true),
            ("emails.type eq \"home\"", true),
            ("emails.type eq \"other\"", false),
            ("emails.primary eq true", true),
            ("emails.primary eq false", false),
            // valuePath: every condition on the same element.
            ("emails[type eq \"work\" and value co \"@example.com\"]", true),
            ("emails[type eq \"home\" and value co \"@example.com\"]", false),
            ("emails.type eq \"home\" and emails.value co \"@example.com\"", true),
            ("emails[type eq \"home\" and not (primary eq true)]", true),
            ("emails[primary pr]", true),
            ("ims[type eq \"xmpp\" and value co \"@foo.com\"]", false),
            ("phoneNumbers[type eq \"work\"]", false),
            ("userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]", true),
            // ne is not (eq).
            ("userType ne \"Employee\"", false),
            ("userType ne \"Intern\"", true),
            ("locale ne \"en-US\"", true),
            ("emails.type ne \"work\"", false),
            ("emails.type ne \"other\"", true),
            ("emails ne \"bjensen@example.com\"", false),
            ("userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")", false),
            ("userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")", true),
            // Absent attributes.
            ("locale eq \"en-US\"", false),
            ("locale pr", false),
            ("locale sw \"\"", false),
            ("name.middleName pr", false),
            ("addresses.locality eq \"x\"", false),
            // pr on empty values.
            ("title pr", true),
            ("nickName pr", false),
            ("phoneNumbers pr", false),
            ("emails pr", true),
            ("name pr", true),
            ("title pr and userType eq \"Employee\"", true),
            ("title pr or userType eq \"Intern\"", true),
            ("nickName pr or userType eq \"Intern\"", false),
            // null.
            ("locale eq null", true),
            ("title eq null", false),
            ("nickName eq null", true),
            ("title ne null", true),
            // Booleans.
            ("active eq true", true),
            ("active eq false", false),
            ("active ne false", true),
            // dateTime compares instants, whatever the written precision or offset.
            ("meta.lastModified gt \"2011-05-13T04:42:33Z\"", true),
            ("meta.lastModified gt \"2011-05-13T04:42:34Z\"", false),
            ("meta.lastModified ge \"2011-05-13T04:42:34Z\"", true),
            ("meta.lastModified eq \"2011-05-13T06:42:34+02:00\"", true),
            ("meta.lastModified lt \"2011-05-13T04:42:34.001Z\"", true),
            ("meta.created le \"2010-01-23T04:56:22Z\"", true),
            ("meta.created lt \"2010-01-23T04:56:22Z\"", false),
            ("meta.resourceType eq \"User\"", true),
            ("meta.resourceType eq \"user\"", false),
            ("meta.version eq \"W/\\\"a330bc54f0671c9\\\"\"", true),
            // Enterprise extension, qualified or not.
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"", true),
            ("manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"", true),
            ("manager eq \"26118915-6090-4610-87e4-49d8ca9f808d\"", true),
            ("manager.displayName eq \"john smith\"", true),
            ("employeeNumber eq \"701984\"", true),
            ("employeeNumber gt \"8\"", false),
            ("department pr", false),
            ("manager[value sw \"2611\" and displayName pr]", true),
            // schemas is multi-valued and case-insensitive.
            ("schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"", true),
            ("schemas eq \"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER\"", true),
            ("schemas eq \"urn:ietf:params:scim:schemas:core:2.0:Group\"", false),
            // binary compares case-exactly.
            ("x509Certificates.value sw \"MIID\"", true),
            ("x509Certificates.value sw \"miid\"", false),
            ("not (userName pr)", false),
            ("not (not (userName pr))", true),
        ],
    );
}

#[test]
fn evaluates_against_a_group() {
    check_matches(
        ResourceKind::Group.def(),
        &group(),
        &[
            ("displayName eq \"tour guides\"", true),
            (
                "members.value eq \"902c246b-6245-4190-8e05-00816be7344a\"",
                true,
            ),
            ("members eq \"902c246b-6245-4190-8e05-00816be7344a\"", true),
            (
                "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"]",
                true,
            ),
            (
                "members[value eq \"902C246B-6245-4190-8E05-00816BE7344A\"]",
                false,
            ),
            (
                "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\" and $ref pr]",
                false,
            ),
            (
                "members[value eq \"2819c223-7f76-453a-919d-413861904646\" and $ref pr]",
                true,
            ),
            ("members.$ref sw \"https://\"", true),
            ("members.value ne \"nobody\"", true),
            ("members pr", true),
            ("meta.lastModified ge \"2011-05-13T04:42:34.000Z\"", true),
        ],
    );
    let empty = json!({"displayName": "Empty", "members": []});
    check_matches(
        ResourceKind::Group.def(),
        &empty,
        &[
            ("members pr", false),
            ("members.value ne \"x\"", true),
            ("members eq null", true),
            ("members[value pr]", false),
            ("not (members[value pr])", true),
        ],
    );
}

#[test]
fn evaluation_is_robust_to_odd_documents() {
    let u = ResourceKind::User.def();
    // Keys are looked up case-insensitively; stored values of the wrong type never match.
    let doc = json!({
        "USERNAME": "x",
        "active": "true",
        "emails": {"value": "single@example.com"},
        "meta": {"lastModified": "not a date"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"employeeNumber": "7"},
        "ims": [null, "loose", {"value": 5}]
    });
    check_matches(
        u,
        &doc,
        &[
            ("userName eq \"X\"", true),
            ("active eq true", false),
            ("active pr", true),
            ("emails.value eq \"single@example.com\"", true),
            ("emails[value ew \"example.com\"]", true),
            ("meta.lastModified gt \"2000-01-01T00:00:00Z\"", false),
            ("meta.lastModified lt \"2000-01-01T00:00:00Z\"", false),
            ("employeeNumber eq \"7\"", true),
            ("ims.value eq \"5\"", false),
            ("ims pr", true),
            ("ims[value pr]", true),
        ],
    );
    assert!(!valid(u, "userName pr").matches(&json!(null)));
    assert!(!valid(u, "userName pr").matches(&json!([1, 2])));
}

#[test]
fn numbers_compare_numerically() {
    // No numeric attribute exists in the shipped schemas, so exercise the comparison directly.
    use super::validate::{Node, Operand, Target};
    let t = Target {
        ext: None,
        attr: "n",
        sub: None,
    };
    let node = |op, n: serde_json::Number| Node::Compare(t, op, Operand::Num(n));
    let doc = json!({"n": [3, 2.5, 18446744073709551615u64]});
    assert!(eval::eval(&node(CompareOp::Eq, 3.into()), &doc));
    assert!(eval::eval(
        &node(CompareOp::Eq, serde_json::Number::from_f64(3.0).unwrap()),
        &doc
    ));
    assert!(eval::eval(&node(CompareOp::Lt, 3.into()), &doc));
    assert!(eval::eval(&node(CompareOp::Ge, u64::MAX.into()), &doc));
    assert!(!eval::eval(&node(CompareOp::Gt, u64::MAX.into()), &doc));
    assert!(!eval::eval(&node(CompareOp::Lt, (-1).into()), &doc));
}
