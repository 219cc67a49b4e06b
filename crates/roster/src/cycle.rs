//! Recorded provisioning cycles of identity providers: the fixture format, and its expansion
//! into concrete requests for a given number of users and groups.
//!
//! A fixture (`tests/fixtures/idp/<idp>.json`, embedded in the binary) is an ordered list of
//! steps. Each step names its source, says what the identity provider sends
//! (method, path, query, headers, body) and which response properties it relies on. A step
//! runs once, or once per user, group or membership (`each`), with placeholders filled in from
//! the generated directory and from values captured from earlier responses:
//!
//! | placeholder | value |
//! |---|---|
//! | `{run}` | a random token unique to this run, so that runs never collide |
//! | `{random}` | a fresh random UUID |
//! | `{i}` | the user's or group's number |
//! | `{user.userName}`, `{user.email}`, `{user.externalId}`, `{user.givenName}`, `{user.familyName}`, `{user.id}` | the current user (`id` captured) |
//! | `{first_user.*}` | the first user (for `manager` and the duplicate create) |
//! | `{group.displayName}`, `{group.externalId}`, `{group.id}`, `{group.size}`, `{group.size-1}` | the current group |
//! | `{member.id}`, `{member.userName}`, `{first_member.id}` | the current membership's user; the group's first member |
//! | `{var.NAME}` | a value captured into `var.NAME` by an earlier step (e.g. a connection test's test user) |
//!
//! A JSON string that is exactly `"{group.members}"` becomes the array
//! `[{"value": id}, ...]` of the group's members, and `"{group.members.display}"` the same
//! with `display` set to each member's userName (Okta's shape).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The identity providers with a recorded cycle.
pub const IDPS: [&str; 6] = ["okta", "entra", "onelogin", "jumpcloud", "google", "ping"];

/// The fixture of an identity provider, as embedded in the binary.
pub fn fixture_source(idp: &str) -> Option<&'static str> {
    Some(match idp {
        "okta" => include_str!("../tests/fixtures/idp/okta.json"),
        "entra" => include_str!("../tests/fixtures/idp/entra.json"),
        "onelogin" => include_str!("../tests/fixtures/idp/onelogin.json"),
        "jumpcloud" => include_str!("../tests/fixtures/idp/jumpcloud.json"),
        "google" => include_str!("../tests/fixtures/idp/google.json"),
        "ping" => include_str!("../tests/fixtures/idp/ping.json"),
        _ => return None,
    })
}

/// Parses and checks the embedded fixture of `idp`.
///
/// # Errors
/// When there is no such fixture or it is malformed.
pub fn load(idp: &str) -> Result<Fixture> {
    let src = fixture_source(idp).with_context(|| {
        format!(
            "no recorded cycle for \"{idp}\"; choose one of {}",
            IDPS.join(", ")
        )
    })?;
    let f: Fixture =
        serde_json::from_str(src).with_context(|| format!("fixture of \"{idp}\" is malformed"))?;
    f.check()?;
    Ok(f)
}

/// One identity provider's recorded cycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The `--idp` name.
    pub idp: String,
    /// The product's name.
    pub name: String,
    /// What the cycle covers, for people.
    #[serde(default)]
    pub description: String,
    /// Source keys (used by steps) → URLs.
    pub sources: BTreeMap<String, String>,
    /// Sizes used when replaying the fixture as recorded.
    pub defaults: Sizes,
    /// Headers the identity provider sends on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers it sends on requests with a body (`Content-Type`).
    #[serde(default)]
    pub body_headers: BTreeMap<String, String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// How many users and groups a cycle provisions.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    /// Users.
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Members of each group (taken from the users, round-robin).
    pub members_per_group: usize,
}

/// What a step repeats over.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Each {
    /// Once.
    Once,
    /// Every user.
    User,
    /// The first user only.
    FirstUser,
    /// Every user but the first.
    OtherUsers,
    /// Every group.
    Group,
    /// The first group only.
    FirstGroup,
    /// Every (group, member) pair.
    Member,
}

/// One step of a cycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the identity provider is doing.
    pub name: String,
    /// A key of [`Fixture::sources`], or `assumed: <why>` where no source documents it.
    pub source: String,
    /// What the step repeats over.
    pub each: Each,
    /// Part of the initial cycle (`roster simulate --initial`): what the identity provider
    /// sends when it provisions a tenant for the first time.
    #[serde(default)]
    pub initial: bool,
    /// The request.
    pub request: RequestTemplate,
    /// What the identity provider relies on in the response.
    pub expect: Expect,
}

impl Step {
    /// Whether the instances of this step may run with several requests in flight.
    ///
    /// Each instance reads only its own user, group or membership and ids captured by
    /// earlier steps, and captures into its own slot, so instances are independent. A
    /// capture into `var.NAME` is the exception: the instances would race for one value,
    /// so such a step keeps the recorded order.
    #[must_use]
    pub fn parallel(&self) -> bool {
        !self.expect.capture.keys().any(|k| k.starts_with("var."))
    }
}

/// Which token a request carries.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    /// The token given on the command line.
    #[default]
    Valid,
    /// A well-formed token that is not valid (the connection test with a wrong token).
    Invalid,
}

/// A request with placeholders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    /// HTTP method.
    pub method: String,
    /// Path relative to the SCIM base URL (`/Users/{user.id}`).
    pub path: String,
    /// Query parameters, in order (encoded by the client).
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    #[serde(default)]
    pub body: Option<Value>,
    /// Which token to send.
    #[serde(default)]
    pub token: TokenUse,
}

/// The response properties a step checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status code.
    pub status: u16,
    /// JSON pointer → expected value (strings are templates).
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// JSON pointers that must be present.
    #[serde(default)]
    pub present: Vec<String>,
    /// JSON pointers that must be absent.
    #[serde(default)]
    pub absent: Vec<String>,
    /// JSON pointer → expected array length (a number or a template such as `{group.size}`).
    #[serde(default)]
    pub len: BTreeMap<String, Value>,
    /// Header → expected prefix of its value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `user.id`, `group.id` or `var.NAME` → JSON pointer to capture it from.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

impl Fixture {
    fn check(&self) -> Result<()> {
        for s in &self.steps {
            if !self.sources.contains_key(&s.source) && !s.source.starts_with("assumed: ") {
                bail!(
                    "step \"{}\" of {} names source \"{}\", which is not in \"sources\"",
                    s.name,
                    self.idp,
                    s.source
                );
            }
            for target in s.expect.capture.keys() {
                if target != "user.id" && target != "group.id" && !target.starts_with("var.") {
                    bail!("step \"{}\" captures into unknown \"{target}\"", s.name);
                }
            }
        }
        Ok(())
    }

    /// Keeps only the steps of the initial cycle ([`Step::initial`]).
    ///
    /// # Errors
    /// When the fixture marks no step as initial.
    pub fn keep_initial(&mut self) -> Result<()> {
        self.steps.retain(|s| s.initial);
        if self.steps.is_empty() {
            bail!(
                "the recorded cycle of \"{}\" marks no initial steps; play it without --initial",
                self.idp
            );
        }
        Ok(())
    }

    /// The number of requests a run with `sizes` sends.
    #[must_use]
    pub fn request_count(&self, sizes: Sizes) -> usize {
        let dir = Directory::new("x", sizes);
        self.steps.iter().map(|s| dir.instances(s.each).len()).sum()
    }
}

/// One generated user.
#[derive(Debug, Clone, Default)]
pub struct UserSlot {
    /// userName (an email address).
    pub user_name: String,
    /// externalId.
    pub external_id: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// The id the server assigned, once captured.
    pub id: Option<String>,
}

/// One generated group.
#[derive(Debug, Clone, Default)]
pub struct GroupSlot {
    /// displayName.
    pub display_name: String,
    /// externalId.
    pub external_id: String,
    /// Indexes of its member users.
    pub members: Vec<usize>,
    /// The id the server assigned, once captured.
    pub id: Option<String>,
}

/// Which user/group/membership one instance of a step is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// The user, if the step is per user or per membership.
    pub user: Option<usize>,
    /// The group, if the step is per group or per membership.
    pub group: Option<usize>,
}

impl Instance {
    /// A short label for reports: `user 2`, `group 1 member 3`.
    #[must_use]
    pub fn label(&self) -> String {
        match (self.group, self.user) {
            (Some(g), Some(u)) => format!("group {g}, member user {u}"),
            (Some(g), None) => format!("group {g}"),
            (None, Some(u)) => format!("user {u}"),
            (None, None) => String::new(),
        }
    }
}

/// The generated directory of a run, and the ids captured so far.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Unique token of the run.
    pub run: String,
    /// Users.
    pub users: Vec<UserSlot>,
    /// Groups.
    pub groups: Vec<GroupSlot>,
    /// Values captured into `var.NAME`.
    pub vars: BTreeMap<String, String>,
}

impl Directory {
    /// Generates `sizes.users` users and `sizes.groups` groups whose members are taken from
    /// the users round-robin.
    #[must_use]
    pub fn new(run: &str, sizes: Sizes) -> Self {
        let users = (0..sizes.users)
            .map(|i| UserSlot {
                user_name: format!("sim.{run}.u{i}@example.com"),
                external_id: format!("ext-{run}-u{i}"),
                given_name: format!("User{i}"),
                family_name: format!("Sim{run}"),
                id: None,
            })
            .collect();
        let per = sizes.members_per_group.min(sizes.users);
        let groups = (0..sizes.groups)
            .map(|j| GroupSlot {
                display_name: format!("Sim {run} group {j}"),
                external_id: format!("ext-{run}-g{j}"),
                members: (0..per).map(|k| (j * per + k) % sizes.users).collect(),
                id: None,
            })
            .collect();
        Self {
            run: run.to_owned(),
            users,
            groups,
            vars: BTreeMap::new(),
        }
    }

    /// The instances a step with `each` runs for.
    #[must_use]
    pub fn instances(&self, each: Each) -> Vec<Instance> {
        let users = |r: std::ops::Range<usize>| {
            r.map(|u| Instance {
                user: Some(u),
                group: None,
            })
            .collect()
        };
        let groups = |r: std::ops::Range<usize>| {
            r.map(|g| Instance {
                user: None,
                group: Some(g),
            })
            .collect()
        };
        match each {
            Each::Once => vec![Instance {
                user: None,
                group: None,
            }],
            Each::User => users(0..self.users.len()),
            Each::FirstUser => users(0..self.users.len().min(1)),
            Each::OtherUsers => users(1.min(self.users.len())..self.users.len()),
            Each::Group => groups(0..self.groups.len()),
            Each::FirstGroup => groups(0..self.groups.len().min(1)),
            Each::Member => self
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, grp)| {
                    grp.members.iter().map(move |&u| Instance {
                        user: Some(u),
                        group: Some(g),
                    })
                })
                .collect(),
        }
    }

    /// Records a captured id.
    pub fn capture(&mut self, inst: Instance, target: &str, id: String) {
        match target {
            "user.id" => {
                if let Some(u) = inst.user.and_then(|u| self.users.get_mut(u)) {
                    u.id = Some(id);
                }
            }
            "group.id" => {
                if let Some(g) = inst.group.and_then(|g| self.groups.get_mut(g)) {
                    g.id = Some(id);
                }
            }
            other => {
                if let Some(name) = other.strip_prefix("var.") {
                    self.vars.insert(name.to_owned(), id);
                }
            }
        }
    }

    fn user_field(&self, u: usize, field: &str) -> Result<String> {
        let Some(user) = self.users.get(u) else {
            bail!("no user {u}");
        };
        Ok(match field {
            "userName" | "email" => user.user_name.clone(),
            "externalId" => user.external_id.clone(),
            "givenName" => user.given_name.clone(),
            "familyName" => user.family_name.clone(),
            "id" => user
                .id
                .clone()
                .with_context(|| format!("user {u} has no id (its create step failed)"))?,
            other => bail!("unknown user field \"{other}\""),
        })
    }

    fn group(&self, inst: Instance) -> Result<&GroupSlot> {
        inst.group
            .and_then(|g| self.groups.get(g))
            .context("a {group.*} placeholder in a step that is not per group")
    }

    fn resolve(&self, inst: Instance, name: &str) -> Result<String> {
        if name == "run" {
            return Ok(self.run.clone());
        }
        if name == "random" {
            return Ok(uuid::Uuid::new_v4().to_string());
        }
        if name == "i" {
            return inst
                .user
                .or(inst.group)
                .map(|i| i.to_string())
                .context("{i} in a step that runs once");
        }
        let (scope, field) = name
            .split_once('.')
            .with_context(|| format!("unknown placeholder {{{name}}}"))?;
        match scope {
            "user" | "member" => {
                let u = inst
                    .user
                    .with_context(|| format!("{{{name}}} in a step that is not per user"))?;
                self.user_field(u, field)
            }
            "first_user" => self.user_field(0, field),
            "var" => self
                .vars
                .get(field)
                .cloned()
                .with_context(|| format!("{{var.{field}}} was not captured (its step failed)")),
            "first_member" => {
                let g = self.group(inst)?;
                let u = *g.members.first().context("the group has no members")?;
                self.user_field(u, field)
            }
            "group" => {
                let g = self.group(inst)?;
                Ok(match field {
                    "displayName" => g.display_name.clone(),
                    "externalId" => g.external_id.clone(),
                    "size" => g.members.len().to_string(),
                    "size-1" => g.members.len().saturating_sub(1).to_string(),
                    "id" => {
                        g.id.clone()
                            .context("the group has no id (its create step failed)")?
                    }
                    other => bail!("unknown group field \"{other}\""),
                })
            }
            _ => bail!("unknown placeholder {{{name}}}"),
        }
    }

    /// Fills the placeholders of a string.
    ///
    /// # Errors
    /// For an unknown placeholder, or an id not captured (yet).
    pub fn fill(&self, inst: Instance, template: &str) -> Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 1..start + len];
            // Only `{identifier.path}` is a placeholder: JSON-ish text such as `{"a":1}` and
            // SCIM filters stay as they are.
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
                continue;
            }
            out.push_str(&rest[..start]);
            out.push_str(&self.resolve(inst, name)?);
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Fills the placeholders of every string in a JSON value; `"{group.members}"` and
    /// `"{group.members.display}"` become arrays of member references.
    ///
    /// # Errors
    /// As [`Directory::fill`].
    pub fn fill_json(&self, inst: Instance, v: &Value) -> Result<Value> {
        Ok(match v {
            Value::String(s) if s == "{group.members}" || s == "{group.members.display}" => {
                let g = self.group(inst)?;
                let display = s.ends_with(".display}");
                let mut refs = Vec::with_capacity(g.members.len());
                for &u in &g.members {
                    let mut m = Map::new();
                    m.insert("value".into(), Value::String(self.user_field(u, "id")?));
                    if display {
                        m.insert(
                            "display".into(),
                            Value::String(self.user_field(u, "userName")?),
                        );
                    }
                    refs.push(Value::Object(m));
                }
                Value::Array(refs)
            }
            Value::String(s) => Value::String(self.fill(inst, s)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.fill_json(inst, x))
                    .collect::<Result<_>>()?,
            ),
            Value::Object(o) => {
                let mut out = Map::with_capacity(o.len());
                for (k, x) in o {
                    out.insert(self.fill(inst, k)?, self.fill_json(inst, x)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// Checks a response against a step's expectations; returns what did not match.
#[must_use]
pub fn check(
    dir: &Directory,
    inst: Instance,
    expect: &Expect,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    if status != expect.status {
        problems.push(format!("status {status}, expected {}", expect.status));
        // The other checks describe the expected response, not an error body.
        return problems;
    }
    for (name, prefix) in &expect.headers {
        match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(v) if v.starts_with(prefix.as_str()) => {}
            Some(v) => problems.push(format!("header {name}: \"{v}\", expected \"{prefix}…\"")),
            None => problems.push(format!("header {name} is missing")),
        }
    }
    for (ptr, want) in &expect.json {
        let want = match dir.fill_json(inst, want) {
            Ok(w) => w,
            Err(e) => {
                problems.push(format!("{ptr}: {e:#}"));
                continue;
            }
        };
        match body.pointer(ptr) {
            Some(got) if json_eq(got, &want) => {}
            Some(got) => problems.push(format!("{ptr} is {got}, expected {want}")),
            None => problems.push(format!("{ptr} is missing, expected {want}")),
        }
    }
    for ptr in &expect.present {
        if body.pointer(ptr).is_none() {
            problems.push(format!("{ptr} is missing"));
        }
    }
    for ptr in &expect.absent {
        if let Some(v) = body.pointer(ptr) {
            problems.push(format!("{ptr} should be absent, is {v}"));
        }
    }
    for (ptr, want) in &expect.len {
        let want = match want {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => dir.fill(inst, s).ok().and_then(|s| s.parse::<usize>().ok()),
            _ => None,
        };
        let Some(want) = want else {
            problems.push(format!("{ptr}: bad expected length"));
            continue;
        };
        // An empty multi-valued attribute is unassigned and may be omitted (RFC 7643 §2.5).
        let got = match body.pointer(ptr) {
            Some(Value::Array(a)) => a.len(),
            None | Some(Value::Null) => 0,
            Some(other) => {
                problems.push(format!("{ptr} is {other}, expected an array"));
                continue;
            }
        };
        if got != want {
            problems.push(format!("{ptr} has {got} elements, expected {want}"));
        }
    }
    problems
}

/// JSON equality, except that strings compare case-insensitively when they look like e-mail
/// addresses or user names: identity providers compare those that way, and servers may
/// normalise their case.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            x == y || (x.contains('@') && x.eq_ignore_ascii_case(y))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sizes() -> Sizes {
        Sizes {
            users: 3,
            groups: 2,
            members_per_group: 2,
        }
    }

    #[test]
    fn every_fixture_loads_and_names_its_sources() {
        for idp in IDPS {
            let f = load(idp).unwrap();
            assert_eq!(f.idp, idp);
            assert!(!f.steps.is_empty());
            for url in f.sources.values() {
                assert!(url.starts_with("https://"), "{idp}: {url}");
            }
            assert!(f.request_count(f.defaults) > 10, "{idp}");
        }
        assert!(load("azure").is_err());
    }

    #[test]
    fn initial_cycles_and_parallel_steps() {
        let mut entra = load("entra").unwrap();
        let all = entra.steps.len();
        entra.keep_initial().unwrap();
        let kept: Vec<(Each, &str)> = entra
            .steps
            .iter()
            .map(|s| (s.each, s.request.method.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                (Each::User, "GET"),
                (Each::User, "POST"),
                (Each::Group, "GET"),
                (Each::Group, "POST"),
                (Each::Member, "PATCH"),
            ]
        );
        assert!(kept.len() < all);
        let err = load("okta").unwrap().keep_initial().unwrap_err();
        assert!(err.to_string().contains("marks no initial steps"), "{err}");
        // Steps that capture one shared value stay sequential; the others may overlap.
        let jc = load("jumpcloud").unwrap();
        let sequential: Vec<&str> = jc
            .steps
            .iter()
            .filter(|s| !s.parallel())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(sequential.len(), 2, "{sequential:?}");
        assert!(entra.steps.iter().all(Step::parallel));
    }

    #[test]
    fn directory_expands_instances_and_members() {
        let d = Directory::new("r", sizes());
        assert_eq!(d.instances(Each::Once).len(), 1);
        assert_eq!(d.instances(Each::User).len(), 3);
        assert_eq!(d.instances(Each::OtherUsers).len(), 2);
        assert_eq!(d.instances(Each::FirstGroup).len(), 1);
        assert_eq!(d.groups[0].members, vec![0, 1]);
        assert_eq!(d.groups[1].members, vec![2, 0]);
        assert_eq!(d.instances(Each::Member).len(), 4);
        let empty = Directory::new(
            "r",
            Sizes {
                users: 0,
                groups: 1,
                members_per_group: 5,
            },
        );
        assert!(empty.instances(Each::OtherUsers).is_empty());
        assert!(empty.groups[0].members.is_empty());
    }

    #[test]
    fn placeholders_fill_and_report_missing_ids() {
        let mut d = Directory::new("r", sizes());
        let inst = Instance {
            user: Some(1),
            group: Some(0),
        };
        assert_eq!(
            d.fill(inst, "/Users?x={user.userName}&g={group.displayName}")
                .unwrap(),
            "/Users?x=sim.r.u1@example.com&g=Sim r group 0"
        );
        assert!(d.fill(inst, "{user.id}").is_err());
        d.capture(inst, "user.id", "id-1".into());
        d.capture(inst, "group.id", "g-0".into());
        assert_eq!(d.fill(inst, "/Users/{user.id}").unwrap(), "/Users/id-1");
        // Filters and JSON text are not placeholders.
        assert_eq!(
            d.fill(inst, "members[value eq \"{user.id}\"] {\"a\": 1} {}")
                .unwrap(),
            "members[value eq \"id-1\"] {\"a\": 1} {}"
        );
        assert!(d.fill(inst, "{nope.x}").is_err());
        d.capture(
            Instance {
                user: Some(0),
                group: None,
            },
            "user.id",
            "id-0".into(),
        );
        let v = d
            .fill_json(inst, &json!({"m": "{group.members.display}", "n": 1}))
            .unwrap();
        assert_eq!(
            v,
            json!({"m": [{"value": "id-0", "display": "sim.r.u0@example.com"}, {"value": "id-1", "display": "sim.r.u1@example.com"}], "n": 1})
        );
    }

    #[test]
    fn checks_report_each_mismatch() {
        let d = Directory::new("r", sizes());
        let inst = Instance {
            user: None,
            group: None,
        };
        let expect: Expect = serde_json::from_value(json!({
            "status": 200,
            "json": {"/a": 1, "/u": "X@Example.com"},
            "present": ["/b"],
            "absent": ["/c"],
            "len": {"/d": 2, "/e": 0},
        }))
        .unwrap();
        let h = reqwest::header::HeaderMap::new();
        let ok = json!({"a": 1, "u": "x@example.com", "b": null, "d": [1, 2]});
        assert!(check(&d, inst, &expect, 200, &h, &ok).is_empty());
        let bad = json!({"a": 2, "c": 1, "d": [1]});
        assert_eq!(check(&d, inst, &expect, 200, &h, &bad).len(), 5);
        assert_eq!(check(&d, inst, &expect, 500, &h, &ok).len(), 1);
    }
}
