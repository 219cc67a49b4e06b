//! IdP dialects: turning the known deviations of identity providers into standard requests.
//!
//! Identity providers deviate from RFC 7643/7644 in documented ways (capitalised PATCH ops,
//! booleans sent as strings, path-less PATCH with dotted keys, ...). The protocol core stays
//! strict; this module is the ONE place that knows the deviations. The server runs every
//! request body (POST, PUT, PATCH) and every `filter` through it before the core sees them.
//!
//! # Contract
//!
//! - Pure: values in, values out, no IO. The only state a rule may look at is the stored
//!   document passed in by the caller ([`normalize_body`]'s `current`).
//! - Every deviation is one named [`Rule`] (listed in [`RULES`]) with the sources that
//!   document or show it. [`Normalized::applied`] says which rules changed the request, so the
//!   provisioning log can show them.
//! - Rules only rewrite input that the core would otherwise reject, or silently misread, and
//!   only where the intended meaning is unambiguous. A standard request passes through
//!   unchanged and with no rule applied (proptested), and normalising twice gives the same
//!   result as normalising once.
//! - Never panics, whatever the input: malformed input is passed on unchanged for the core to
//!   reject with a proper SCIM error.
//!
//! # Which rules apply
//!
//! Rules marked [`Applies::Always`] are safe for every client, because the shape they rewrite
//! has exactly one meaning and the core would refuse or ignore it; they run for every tenant.
//! Rules marked [`Applies::Only`] run for the identity providers listed and, recognised by the
//! request's shape, for `generic` tenants. A tenant that names another identity provider keeps
//! the strict RFC answer for those shapes (for example `noTarget`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::filter::parse_filter;
use crate::schema::TypeDef;

mod filter_text;
mod legacy_urn;
mod patch;
#[cfg(test)]
mod tests;
mod values;

/// The identity provider a tenant provisions from (the tenant's `idp` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idp {
    /// Okta.
    Okta,
    /// Microsoft Entra ID (formerly Azure AD).
    Entra,
    /// OneLogin.
    OneLogin,
    /// JumpCloud.
    JumpCloud,
    /// Google Workspace / Cloud Identity.
    Google,
    /// Ping Identity (PingOne, PingFederate).
    Ping,
    /// Any other SCIM client: rules are applied by recognising the request's shape.
    Generic,
}

impl Idp {
    /// Every identity provider, `generic` last.
    pub const ALL: [Idp; 7] = [
        Idp::Okta,
        Idp::Entra,
        Idp::OneLogin,
        Idp::JumpCloud,
        Idp::Google,
        Idp::Ping,
        Idp::Generic,
    ];

    /// The setting's value: `okta`, `entra`, `onelogin`, `jumpcloud`, `google`, `ping`,
    /// `generic`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Okta => "okta",
            Self::Entra => "entra",
            Self::OneLogin => "onelogin",
            Self::JumpCloud => "jumpcloud",
            Self::Google => "google",
            Self::Ping => "ping",
            Self::Generic => "generic",
        }
    }

    /// The product's name, for people.
    #[must_use]
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Okta => "Okta",
            Self::Entra => "Microsoft Entra ID",
            Self::OneLogin => "OneLogin",
            Self::JumpCloud => "JumpCloud",
            Self::Google => "Google Workspace",
            Self::Ping => "Ping Identity",
            Self::Generic => "generic SCIM client",
        }
    }

    /// Parses a setting value, case-insensitively. Unknown values give `None`; callers treat
    /// that as [`Idp::Generic`], the setting that recognises every rule by shape.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown identity-provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity provider \"{0}\"; use okta, entra, onelogin, jumpcloud, google, ping or generic")]
pub struct UnknownIdp(pub String);

impl FromStr for Idp {
    type Err = UnknownIdp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownIdp(s.to_owned()))
    }
}

/// For whom a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every tenant: the rewritten shape is unambiguous and the core would refuse or ignore it.
    Always,
    /// Tenants of these identity providers, and `generic` tenants (recognised by shape).
    Only(&'static [Idp]),
}

/// One named deviation and how it is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable name shown in logs (`op-case`, `entra.value-path-create`, ...).
    pub name: &'static str,
    /// For whom it runs.
    pub applies: Applies,
    /// What it rewrites, in one sentence.
    pub summary: &'static str,
    /// Where the deviation is documented or was observed.
    pub sources: &'static [&'static str],
}

impl Rule {
    /// Whether the rule runs for a tenant of `idp`.
    #[must_use]
    pub fn enabled_for(&self, idp: Idp) -> bool {
        match self.applies {
            Applies::Always => true,
            Applies::Only(list) => idp == Idp::Generic || list.contains(&idp),
        }
    }
}

/// `op-case`: PATCH `op` in any letter case (`Add`, `Replace`, `Remove`) → lowercase.
///
/// Documented by Microsoft ("Entra ID emits the values of op as Add, Replace, and Remove",
/// <https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups>);
/// observed in <https://github.com/elimity-com/scim/pull/79> and
/// <https://github.com/imulab/go-scim/issues/54>.
pub const OP_CASE: &str = "op-case";
/// `string-boolean`: `"True"`/`"False"` (any case) for an attribute whose schema type is
/// boolean → `true`/`false`.
///
/// Documented in Entra's known issues
/// (<https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility>);
/// confirmed by Microsoft in <https://github.com/AzureAD/SCIMReferenceCode/issues/21>.
pub const STRING_BOOLEAN: &str = "string-boolean";
/// `pathless-attribute-paths`: keys of a path-less PATCH value that are attribute paths
/// (`name.givenName`, `urn:…:User:manager.value`, `emails[type eq "work"].value`) → one
/// operation per key with that `path`.
///
/// Documented in Entra's known issues (PATCH without path, before the `aadOptscim062020` flag);
/// the payload shape is from <https://github.com/Captain-P-Goldfish/scim-for-keycloak/issues/26>.
pub const PATHLESS_ATTRIBUTE_PATHS: &str = "pathless-attribute-paths";
/// `manager-string`: the enterprise `manager` sent as a plain string (the manager's id) →
/// `{"value": "<id>"}`.
///
/// Observed (Entra) in <https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/686> and
/// <https://github.com/apache/directory-scimple/pull/1244>; no identity provider documents it.
pub const MANAGER_STRING: &str = "manager-string";
/// `entra.value-path-create`: `add`/`replace` on `attr[type eq "x"].sub` when no element
/// matches → `add` of a new element `{"type": "x", "sub": value}`.
///
/// Entra's update requests in its tutorial use these paths for attributes the user may not have
/// yet; observed in <https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/416> and
/// <https://learn.microsoft.com/en-us/answers/questions/1684621/entra-id-patch-sending-add-instead-of-replace>.
pub const VALUE_PATH_CREATE: &str = "entra.value-path-create";
/// `filter.value-path-subattr`: the filter `attr[f].sub op v` (or `attr[f] op v`) →
/// `attr[f and sub op v]`.
///
/// In Microsoft's tutorial (see <https://github.com/MicrosoftDocs/azure-docs/issues/83855>);
/// observed in <https://github.com/pond/scimitar/issues/115> and
/// <https://github.com/FusionAuth/fusionauth-issues/issues/2456>.
pub const FILTER_VALUE_PATH_SUBATTR: &str = "filter.value-path-subattr";

/// `legacy-urn`: the schema URNs of the SCIM 2.0 drafts (`urn:scim:schemas:core:2.0`,
/// `urn:scim:schemas:extension:enterprise:2.0`, with or without `:User`/`:Group`) → the RFC 7643
/// URNs, in `schemas`, extension keys, PATCH paths and filter attribute paths.
///
/// OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector renders its default
/// template with them (see docs/idp/onelogin.md); Microsoft's SCIM reference code reads the
/// enterprise one as obsolete; draft-era servers (OSIAM) used them.
pub const LEGACY_URN: &str = "legacy-urn";
/// `patchop-schemas-missing`: a PATCH body with `Operations` but no `schemas` member → the
/// PatchOp message URN added.
///
/// authentik's outgoing SCIM provider sends group updates (rename, path-less replace) as a
/// `PatchRequest` serialised with `exclude_unset`, which leaves out the model's default
/// `schemas` (`authentik/providers/scim/clients/groups.py`, `_update_patch_general`).
pub const PATCHOP_SCHEMAS_MISSING: &str = "patchop-schemas-missing";

const ENTRA_TUTORIAL: &str =
    "https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups";
const ENTRA_KNOWN_ISSUES: &str =
    "https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility";

/// Every rule, in the order they are applied.
pub const RULES: &[Rule] = &[
    Rule {
        name: LEGACY_URN,
        applies: Applies::Always,
        summary: "the SCIM 2.0 drafts' schema URNs (urn:scim:schemas:core:2.0, \
                  urn:scim:schemas:extension:enterprise:2.0) become the RFC 7643 URNs in \
                  schemas, extension keys, PATCH paths and filters",
        sources: &[
            "https://developers.onelogin.com/scim/define-user-schema",
            "https://github.com/AzureAD/SCIMReferenceCode",
            "https://github.com/osiam/osiam",
        ],
    },
    Rule {
        name: PATCHOP_SCHEMAS_MISSING,
        applies: Applies::Always,
        summary: "a PATCH body with \"Operations\" but no \"schemas\" gets the PatchOp URN",
        sources: &[
            "https://github.com/goauthentik/authentik/blob/main/authentik/providers/scim/clients/groups.py",
        ],
    },
    Rule {
        name: OP_CASE,
        applies: Applies::Always,
        summary: "PATCH \"op\" in any letter case (\"Add\", \"Replace\", \"Remove\") becomes lowercase",
        sources: &[
            ENTRA_TUTORIAL,
            "https://github.com/thomaspoignant/scim-patch/pull/6",
            "https://github.com/elimity-com/scim/pull/79",
            "https://github.com/imulab/go-scim/issues/54",
            "https://github.com/Captain-P-Goldfish/scim-for-keycloak/issues/5",
        ],
    },
    Rule {
        name: STRING_BOOLEAN,
        applies: Applies::Always,
        summary: "\"True\"/\"False\" (any letter case) for a boolean attribute becomes true/false",
        sources: &[
            ENTRA_KNOWN_ISSUES,
            "https://github.com/AzureAD/SCIMReferenceCode/issues/21",
            "https://github.com/getsentry/sentry/pull/45091",
            "https://github.com/Captain-P-Goldfish/scim-for-keycloak/issues/119",
        ],
    },
    Rule {
        name: PATHLESS_ATTRIBUTE_PATHS,
        applies: Applies::Always,
        summary: "keys of a path-less PATCH value that are attribute paths (\"name.givenName\") \
                  become one operation each, with that path",
        sources: &[
            ENTRA_KNOWN_ISSUES,
            "https://github.com/Captain-P-Goldfish/scim-for-keycloak/issues/26",
            "https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/193",
        ],
    },
    Rule {
        name: MANAGER_STRING,
        applies: Applies::Always,
        summary: "the enterprise \"manager\" sent as a plain string becomes {\"value\": string}",
        sources: &[
            "https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/686",
            "https://github.com/apache/directory-scimple/pull/1244",
        ],
    },
    Rule {
        name: VALUE_PATH_CREATE,
        applies: Applies::Only(&[Idp::Entra]),
        summary: "add/replace on attr[type eq \"x\"].sub with no matching element adds the \
                  element {\"type\": \"x\", \"sub\": value}",
        sources: &[
            ENTRA_TUTORIAL,
            "https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/416",
            "https://learn.microsoft.com/en-us/answers/questions/1684621/entra-id-patch-sending-add-instead-of-replace",
        ],
    },
    Rule {
        name: FILTER_VALUE_PATH_SUBATTR,
        applies: Applies::Always,
        summary: "the filter attr[f].sub op v (or attr[f] op v) becomes attr[f and sub op v]",
        sources: &[
            ENTRA_TUTORIAL,
            "https://github.com/MicrosoftDocs/azure-docs/issues/83855",
            "https://github.com/pond/scimitar/issues/115",
            "https://github.com/FusionAuth/fusionauth-issues/issues/2456",
        ],
    },
];

/// Finds a rule by name.
#[must_use]
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// Which request a body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /Users`, `POST /Groups`.
    Create,
    /// `PUT /{type}/{id}`.
    Replace,
    /// `PATCH /{type}/{id}`.
    Patch,
}

/// A normalised request and the rules that changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized<T> {
    /// The standard request.
    pub request: T,
    /// The names of the rules that changed something, each once, in the order they first fired.
    pub applied: Vec<&'static str>,
}

/// The rules in force for one request, and the record of which ones fired.
pub(crate) struct Ctx {
    idp: Idp,
    applied: Vec<&'static str>,
}

impl Ctx {
    fn new(idp: Idp) -> Self {
        Self {
            idp,
            applied: Vec::new(),
        }
    }

    /// Whether the rule runs for this tenant.
    pub(crate) fn on(&self, name: &str) -> bool {
        rule(name).is_some_and(|r| r.enabled_for(self.idp))
    }

    /// Records that a rule changed the request.
    pub(crate) fn fired(&mut self, name: &'static str) {
        if !self.applied.contains(&name) {
            self.applied.push(name);
        }
    }
}

/// Normalises a POST, PUT or PATCH body of a tenant whose identity provider is `idp`.
///
/// `current` is the stored document of the resource a PATCH targets; only the
/// [`VALUE_PATH_CREATE`] rule reads it (to tell whether a value filter matches an element), and
/// [`patch_needs_current`] says when it is worth reading. Without it that rule does nothing.
#[must_use]
pub fn normalize_body(
    idp: Idp,
    req: BodyKind,
    def: TypeDef,
    mut body: Value,
    current: Option<&Value>,
) -> Normalized<Value> {
    let mut ctx = Ctx::new(idp);
    match req {
        BodyKind::Create | BodyKind::Replace => {
            if let Value::Object(obj) = &mut body {
                if ctx.on(LEGACY_URN) {
                    legacy_urn::fix_object(def, obj, &mut ctx);
                }
                values::fix_resource(def, obj, &mut ctx);
            }
        }
        BodyKind::Patch => {
            patch_envelope(def, &mut body, &mut ctx);
            patch::normalize_patch(def, &mut body, current, &mut ctx);
        }
    }
    Normalized {
        request: body,
        applied: ctx.applied,
    }
}

/// The rules about a PATCH body as a whole, before its operations are looked at:
/// [`PATCHOP_SCHEMAS_MISSING`], and [`LEGACY_URN`] in each operation's path and value.
fn patch_envelope(def: TypeDef, body: &mut Value, ctx: &mut Ctx) {
    let Value::Object(obj) = body else {
        return;
    };
    // Only the shape that means one thing: a list of operations, each with a string `op`.
    let operations = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|ops| {
            !ops.is_empty()
                && ops.iter().all(|o| {
                    o.as_object().is_some_and(|o| {
                        o.iter()
                            .any(|(k, v)| k.eq_ignore_ascii_case("op") && v.is_string())
                    })
                })
        });
    let has_schemas = obj.keys().any(|k| k.eq_ignore_ascii_case("schemas"));
    if ctx.on(PATCHOP_SCHEMAS_MISSING) && operations && !has_schemas {
        obj.insert(
            "schemas".to_owned(),
            Value::Array(vec![Value::String(
                crate::schema::PATCH_OP_SCHEMA.to_owned(),
            )]),
        );
        ctx.fired(PATCHOP_SCHEMAS_MISSING);
    }
    if !ctx.on(LEGACY_URN) {
        return;
    }
    let Some(ops) = patch::operations_mut(body) else {
        return;
    };
    for op in ops.iter_mut().filter_map(Value::as_object_mut) {
        legacy_urn::fix_path(op, def, ctx);
        if let Some(Value::Object(value)) = op
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v)
        {
            legacy_urn::fix_object(def, value, ctx);
        }
    }
}

/// Whether normalising this PATCH body for `idp` could use the resource's stored document:
/// true when a rule that reads it is in force and an operation has the shape it rewrites
/// (`add`/`replace` of `attr[filter].sub`). Lets the caller skip the extra read otherwise.
#[must_use]
pub fn patch_needs_current(idp: Idp, def: TypeDef, body: &Value) -> bool {
    let ctx = Ctx::new(idp);
    ctx.on(VALUE_PATH_CREATE) && patch::has_value_path_sub_op(def, body)
}

/// Normalises a `filter` (query parameter or SearchRequest member).
///
/// A filter that parses is returned unchanged: rules only rewrite filters the core would
/// refuse, and a rewrite is kept only if the result parses, so that the error a client sees
/// for a filter no rule can fix still quotes its own text.
#[must_use]
pub fn normalize_filter(idp: Idp, filter: &str) -> Normalized<String> {
    let mut ctx = Ctx::new(idp);
    let mut text = Cow::Borrowed(filter);
    if ctx.on(LEGACY_URN) {
        if let Some(rewritten) = legacy_urn::rewrite_filter(filter) {
            text = Cow::Owned(rewritten);
            ctx.fired(LEGACY_URN);
        }
    }
    if parse_filter(&text).is_err() && ctx.on(FILTER_VALUE_PATH_SUBATTR) {
        if let Some(rewritten) = filter_text::rewrite_value_path_subattr(&text) {
            text = Cow::Owned(rewritten);
            ctx.fired(FILTER_VALUE_PATH_SUBATTR);
        }
    }
    // A rewrite that does not parse is dropped, so that the client's error quotes its text.
    if matches!(text, Cow::Owned(_)) && parse_filter(&text).is_err() {
        return Normalized {
            request: filter.to_owned(),
            applied: Vec::new(),
        };
    }
    Normalized {
        request: text.into_owned(),
        applied: ctx.applied,
    }
}
