//! Schemas, attribute characteristics and resource types (RFC 7643 §2, §4, §6, §7, §8.7).
//!
//! This module is the single description of what Roster stores and returns. Discovery
//! (`/Schemas`, `/ResourceTypes`) is rendered from it, and validation, filtering, PATCH and
//! projection all look attributes up here, so what is published is exactly what is enforced.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The ListResponse message URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PatchOp message URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The SearchRequest message URN.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// The ServiceProviderConfig schema URN.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The ResourceType schema URN.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The Schema schema URN.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A Unicode string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` instant.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI, compared case-exactly.
    Reference,
    /// A structure of sub-attributes.
    Complex,
}

impl AttrType {
    /// The name used in schema representations.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// Whether and how an attribute may be modified (RFC 7643 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service provider only; client values are ignored.
    ReadOnly,
    /// Freely modifiable.
    ReadWrite,
    /// May be set once, then never changed.
    Immutable,
    /// May be set, never returned.
    WriteOnly,
}

impl Mutability {
    /// The keyword used in schema representations.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned (RFC 7643 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never.
    Never,
    /// By default, unless excluded.
    Default,
    /// Only when named in `attributes`.
    Request,
}

impl Returned {
    /// The keyword used in schema representations.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

/// How unique an attribute's value is (RFC 7643 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// No uniqueness.
    None,
    /// Unique within the tenant.
    Server,
    /// Globally unique.
    Global,
}

impl Uniqueness {
    /// The keyword used in schema representations.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

/// One attribute definition with its characteristics.
#[derive(Debug, Clone)]
pub struct AttributeDef {
    /// The canonical name (matched case-insensitively).
    pub name: &'static str,
    /// The data type.
    pub attr_type: AttrType,
    /// Whether the value is an array.
    pub multi_valued: bool,
    /// Human-readable description.
    pub description: &'static str,
    /// Whether a value must be present on create and replace.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Mutability.
    pub mutability: Mutability,
    /// When returned.
    pub returned: Returned,
    /// Uniqueness.
    pub uniqueness: Uniqueness,
    /// Suggested values (published, not enforced).
    pub canonical_values: &'static [&'static str],
    /// For references: what they may point to.
    pub reference_types: &'static [&'static str],
    /// Sub-attributes of a complex attribute.
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    fn new(name: &'static str, attr_type: AttrType) -> Self {
        Self {
            name,
            attr_type,
            multi_valued: false,
            description: "",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: Vec::new(),
        }
    }

    fn desc(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    fn canonical(mut self, v: &'static [&'static str]) -> Self {
        self.canonical_values = v;
        self
    }
    fn refs(mut self, r: &'static [&'static str]) -> Self {
        self.reference_types = r;
        self.case_exact = true;
        self
    }
    fn subs(mut self, s: Vec<AttributeDef>) -> Self {
        self.sub_attributes = s;
        self
    }

    /// Finds a sub-attribute by name, case-insensitively.
    #[must_use]
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether this multi-valued complex attribute carries a `primary` sub-attribute.
    #[must_use]
    pub fn has_primary(&self) -> bool {
        self.sub_attribute("primary").is_some()
    }

    /// The schema representation of this attribute (RFC 7643 §7).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.attr_type.as_str()));
        m.insert("multiValued".into(), json!(self.multi_valued));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if matches!(
            self.attr_type,
            AttrType::String | AttrType::Reference | AttrType::Binary
        ) {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if !self.reference_types.is_empty() {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        m.insert("mutability".into(), json!(self.mutability.as_str()));
        m.insert("returned".into(), json!(self.returned.as_str()));
        m.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        if self.attr_type == AttrType::Complex {
            m.insert(
                "subAttributes".into(),
                Value::Array(
                    self.sub_attributes
                        .iter()
                        .map(AttributeDef::to_json)
                        .collect(),
                ),
            );
        }
        Value::Object(m)
    }
}

/// A schema: a URN and its attributes.
#[derive(Debug, Clone)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
    /// Top-level attributes.
    pub attributes: Vec<AttributeDef>,
}

impl SchemaDef {
    /// Finds a top-level attribute by name, case-insensitively.
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The schema representation (RFC 7643 §7); `base` is the absolute SCIM base URL.
    #[must_use]
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(AttributeDef::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{}", self.id),
            }
        })
    }
}

/// The kinds of resource Roster serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `urn:ietf:params:scim:schemas:core:2.0:User`.
    User,
    /// `urn:ietf:params:scim:schemas:core:2.0:Group`.
    Group,
}

impl ResourceKind {
    /// The resource type name (`User`, `Group`), also stored in `meta.resourceType`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    /// The endpoint path segment (`Users`, `Groups`).
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }

    /// The resource type definition.
    #[must_use]
    pub fn def(self) -> &'static ResourceTypeDef {
        match self {
            Self::User => &registry().user,
            Self::Group => &registry().group,
        }
    }

    /// All kinds, in discovery order.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];
}

/// A resource type: its core schema, extensions, and the common attributes.
#[derive(Debug, Clone)]
pub struct ResourceTypeDef {
    /// Which kind.
    pub kind: ResourceKind,
    /// Description.
    pub description: &'static str,
    /// The core schema.
    pub schema: SchemaDef,
    /// Schema extensions, none of them required.
    pub extensions: Vec<SchemaDef>,
    /// `id`, `externalId` and `meta` (RFC 7643 §3.1), shared by every resource type.
    pub common: Vec<AttributeDef>,
}

/// A resource type as one tenant sees it: the built-in schemas ([`ResourceKind::def`]) or those
/// with the tenant's custom extensions ([`crate::custom::resource_type`]). Definitions live for
/// the whole process, so validated filters and PATCH targets can refer into them freely.
pub type TypeDef = &'static ResourceTypeDef;

/// Where an attribute lives in a resource document.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// `None` for the core schema and the common attributes; the extension URN otherwise,
    /// which is also the key of the extension's object in the resource document.
    pub extension: Option<&'static str>,
    /// The top-level attribute.
    pub attr: &'a AttributeDef,
    /// The sub-attribute, when the path named one.
    pub sub: Option<&'a AttributeDef>,
}

impl ResolvedAttr<'_> {
    /// The definition of the addressed value: the sub-attribute when given, else the attribute.
    #[must_use]
    pub fn leaf(&self) -> &AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
}

impl ResourceTypeDef {
    /// The core schema, then the extensions: what `/Schemas` publishes for this type.
    pub fn schemas(&self) -> impl Iterator<Item = &SchemaDef> {
        std::iter::once(&self.schema).chain(self.extensions.iter())
    }

    /// Finds a schema (core or extension) by URN, case-insensitively.
    #[must_use]
    pub fn schema_by_urn(&self, urn: &str) -> Option<&SchemaDef> {
        std::iter::once(&self.schema)
            .chain(self.extensions.iter())
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves an attribute path: an optional schema URN, an attribute name and an optional
    /// sub-attribute name, all matched case-insensitively (RFC 7644 §3.10).
    ///
    /// Unqualified names are looked up in the common attributes, then the core schema, then the
    /// extensions, so `employeeNumber` finds the enterprise attribute.
    #[must_use]
    pub fn resolve(
        &self,
        urn: Option<&str>,
        attr: &str,
        sub: Option<&str>,
    ) -> Option<ResolvedAttr<'_>> {
        let (extension, def) = match urn {
            Some(u) => {
                let schema = self.schema_by_urn(u)?;
                let ext = (schema.id != self.schema.id).then_some(schema.id);
                let def = schema.attribute(attr).or_else(|| {
                    // `urn:...:core:2.0:User:id` names a common attribute.
                    (ext.is_none())
                        .then(|| {
                            self.common
                                .iter()
                                .find(|a| a.name.eq_ignore_ascii_case(attr))
                        })
                        .flatten()
                })?;
                (ext, def)
            }
            None => {
                if let Some(d) = self
                    .common
                    .iter()
                    .chain(self.schema.attributes.iter())
                    .find(|a| a.name.eq_ignore_ascii_case(attr))
                {
                    (None, d)
                } else {
                    self.extensions
                        .iter()
                        .find_map(|s| s.attribute(attr).map(|d| (Some(s.id), d)))?
                }
            }
        };
        let sub = match sub {
            Some(s) => Some(def.sub_attribute(s)?),
            None => None,
        };
        Some(ResolvedAttr {
            extension,
            attr: def,
            sub,
        })
    }

    /// The ResourceType representation (RFC 7643 §6); `base` is the absolute SCIM base URL.
    #[must_use]
    pub fn to_json(&self, base: &str) -> Value {
        let name = self.kind.as_str();
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "endpoint": format!("/{}", self.kind.endpoint()),
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter()
                .map(|e| json!({"schema": e.id, "required": false}))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{name}"),
            }
        })
    }
}

struct Registry {
    user: ResourceTypeDef,
    group: ResourceTypeDef,
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| Registry {
        user: ResourceTypeDef {
            kind: ResourceKind::User,
            description: "User Account",
            schema: user_schema(),
            extensions: vec![enterprise_user_schema()],
            common: common_attributes(),
        },
        group: ResourceTypeDef {
            kind: ResourceKind::Group,
            description: "Group",
            schema: group_schema(),
            extensions: vec![],
            common: common_attributes(),
        },
    })
}

/// Every schema Roster publishes, in discovery order.
#[must_use]
pub fn all_schemas() -> Vec<&'static SchemaDef> {
    let r = registry();
    vec![&r.user.schema, &r.user.extensions[0], &r.group.schema]
}

use AttrType as T;
use Mutability as M;

fn s(name: &'static str) -> AttributeDef {
    AttributeDef::new(name, T::String)
}

fn common_attributes() -> Vec<AttributeDef> {
    vec![
        s("id")
            .desc("Unique identifier for the resource, assigned by the service provider.")
            .case_exact()
            .mutability(M::ReadOnly)
            .returned(Returned::Always)
            .unique(Uniqueness::Server),
        s("externalId")
            .desc("Identifier for the resource as defined by the provisioning client.")
            .case_exact(),
        AttributeDef::new("meta", T::Complex)
            .desc("Resource metadata.")
            .mutability(M::ReadOnly)
            .subs(vec![
                s("resourceType").case_exact().mutability(M::ReadOnly),
                AttributeDef::new("created", T::DateTime).mutability(M::ReadOnly),
                AttributeDef::new("lastModified", T::DateTime).mutability(M::ReadOnly),
                AttributeDef::new("location", T::Reference)
                    .refs(&["uri"])
                    .mutability(M::ReadOnly),
                s("version").case_exact().mutability(M::ReadOnly),
            ]),
    ]
}

/// A multi-valued complex attribute with `value`, `display`, `type` and `primary`.
fn multi_complex(
    name: &'static str,
    desc: &'static str,
    value: AttributeDef,
    types: &'static [&'static str],
) -> AttributeDef {
    AttributeDef::new(name, T::Complex)
        .desc(desc)
        .multi()
        .subs(vec![
            value,
            s("display").desc("A human-readable name, primarily used for display purposes."),
            s("type")
                .desc("A label indicating the attribute's function.")
                .canonical(types),
            AttributeDef::new("primary", T::Boolean)
                .desc("Indicates the 'primary' or preferred attribute value; at most one is true."),
        ])
}

fn user_schema() -> SchemaDef {
    SchemaDef {
        id: USER_SCHEMA,
        name: "User",
        description: "User Account",
        attributes: vec![
            s("userName")
                .desc("Unique identifier for the User, unique per tenant, compared case-insensitively.")
                .required()
                .unique(Uniqueness::Server),
            AttributeDef::new("name", T::Complex)
                .desc("The components of the user's real name.")
                .subs(vec![
                    s("formatted").desc("The full name, formatted for display."),
                    s("familyName").desc("The family name, or last name."),
                    s("givenName").desc("The given name, or first name."),
                    s("middleName").desc("The middle name(s)."),
                    s("honorificPrefix").desc("The honorific prefix(es), e.g. 'Ms.'."),
                    s("honorificSuffix").desc("The honorific suffix(es), e.g. 'III'."),
                ]),
            s("displayName").desc("The name of the User, suitable for display to end-users."),
            s("nickName").desc("The casual way to address the user."),
            AttributeDef::new("profileUrl", T::Reference)
                .desc("A fully qualified URL pointing to a page representing the User's online profile.")
                .refs(&["external"]),
            s("title").desc("The user's title, such as 'Vice President'."),
            s("userType").desc("Identifies the relationship between the organization and the user."),
            s("preferredLanguage").desc("The User's preferred written or spoken language (RFC 7231 Accept-Language)."),
            s("locale").desc("The User's default location, e.g. 'en-US'."),
            s("timezone").desc("The User's time zone in IANA format, e.g. 'America/Los_Angeles'."),
            AttributeDef::new("active", T::Boolean)
                .desc("The User's administrative status; false deactivates the user."),
            s("password")
                .desc("The User's cleartext password; stored only as a hash and never returned.")
                .mutability(M::WriteOnly)
                .returned(Returned::Never),
            multi_complex(
                "emails",
                "Email addresses for the user.",
                s("value").desc("Email address for the user."),
                &["work", "home", "other"],
            ),
            multi_complex(
                "phoneNumbers",
                "Phone numbers for the User.",
                s("value").desc("Phone number of the User."),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_complex(
                "ims",
                "Instant messaging addresses for the User.",
                s("value").desc("Instant messaging address for the User."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi_complex(
                "photos",
                "URLs of photos of the User.",
                AttributeDef::new("value", T::Reference)
                    .desc("URL of a photo of the User.")
                    .refs(&["external"]),
                &["photo", "thumbnail"],
            ),
            AttributeDef::new("addresses", T::Complex)
                .desc("A physical mailing address for this User.")
                .multi()
                .subs(vec![
                    s("formatted").desc("The full mailing address, formatted for display."),
                    s("streetAddress").desc("The full street address component."),
                    s("locality").desc("The city or locality component."),
                    s("region").desc("The state or region component."),
                    s("postalCode").desc("The zip code or postal code component."),
                    s("country").desc("The country name component (ISO 3166-1 alpha-2)."),
                    s("type")
                        .desc("A label indicating the attribute's function.")
                        .canonical(&["work", "home", "other"]),
                    AttributeDef::new("primary", T::Boolean)
                        .desc("Indicates the primary mailing address; at most one is true."),
                ]),
            AttributeDef::new("groups", T::Complex)
                .desc("The groups the user belongs to, derived from group memberships.")
                .multi()
                .mutability(M::ReadOnly)
                .subs(vec![
                    s("value")
                        .desc("The identifier of the User's group.")
                        .case_exact()
                        .mutability(M::ReadOnly),
                    AttributeDef::new("$ref", T::Reference)
                        .desc("The URI of the corresponding 'Group' resource.")
                        .refs(&["User", "Group"])
                        .mutability(M::ReadOnly),
                    s("display")
                        .desc("A human-readable name, primarily used for display purposes.")
                        .mutability(M::ReadOnly),
                    s("type")
                        .desc("A label indicating the attribute's function, 'direct' or 'indirect'.")
                        .canonical(&["direct", "indirect"])
                        .mutability(M::ReadOnly),
                ]),
            multi_complex(
                "entitlements",
                "A list of entitlements for the User.",
                s("value").desc("The value of an entitlement."),
                &[],
            ),
            multi_complex(
                "roles",
                "A list of roles for the User.",
                s("value").desc("The value of a role."),
                &[],
            ),
            multi_complex(
                "x509Certificates",
                "A list of certificates issued to the User.",
                AttributeDef::new("value", T::Binary).desc("The value of an X.509 certificate."),
                &[],
            ),
        ],
    }
}

fn enterprise_user_schema() -> SchemaDef {
    SchemaDef {
        id: ENTERPRISE_USER_SCHEMA,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: vec![
            s("employeeNumber").desc("Numeric or alphanumeric identifier assigned to a person."),
            s("costCenter").desc("Identifies the name of a cost center."),
            s("organization").desc("Identifies the name of an organization."),
            s("division").desc("Identifies the name of a division."),
            s("department").desc("Identifies the name of a department."),
            AttributeDef::new("manager", T::Complex)
                .desc("The User's manager.")
                .subs(vec![
                    s("value").desc("The id of the SCIM resource representing the User's manager."),
                    AttributeDef::new("$ref", T::Reference)
                        .desc("The URI of the SCIM resource representing the User's manager.")
                        .refs(&["User"]),
                    s("displayName")
                        .desc("The displayName of the User's manager.")
                        .mutability(M::ReadOnly),
                ]),
        ],
    }
}

fn group_schema() -> SchemaDef {
    SchemaDef {
        id: GROUP_SCHEMA,
        name: "Group",
        description: "Group",
        attributes: vec![
            s("displayName")
                .desc("A human-readable name for the Group.")
                .required(),
            AttributeDef::new("members", T::Complex)
                .desc("A list of members of the Group (Users only).")
                .multi()
                .subs(vec![
                    s("value")
                        .desc("Identifier of the member of this Group.")
                        .case_exact()
                        .mutability(M::Immutable),
                    AttributeDef::new("$ref", T::Reference)
                        .desc("The URI corresponding to a SCIM resource that is a member of this Group.")
                        .refs(&["User"])
                        .mutability(M::Immutable),
                    s("type")
                        .desc("A label indicating the type of resource, 'User'.")
                        .canonical(&["User"])
                        .mutability(M::Immutable),
                ]),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_case_insensitively_and_with_urn() {
        let u = ResourceKind::User.def();
        let r = u.resolve(None, "USERNAME", None).unwrap();
        assert_eq!(r.attr.name, "userName");
        let r = u
            .resolve(Some(USER_SCHEMA), "name", Some("GIVENNAME"))
            .unwrap();
        assert_eq!(r.leaf().name, "givenName");
        let r = u
            .resolve(Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value"))
            .unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        let r = u.resolve(None, "employeeNumber", None).unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        assert!(u.resolve(None, "nope", None).is_none());
        assert!(u.resolve(None, "meta", Some("lastModified")).is_some());
    }

    #[test]
    fn schema_json_omits_empty_canonical_values() {
        let v = ResourceKind::User.def().schema.to_json("http://x");
        let roles = v["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "roles")
            .unwrap();
        let ty = roles["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "type")
            .unwrap();
        assert!(ty.get("canonicalValues").is_none());
    }
}
