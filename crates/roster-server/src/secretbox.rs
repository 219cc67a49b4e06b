//! Webhook signing secrets sealed at rest (`--secret-key-file`).
//!
//! Signing a delivery with HMAC needs the secret itself, so it cannot be stored as a hash like
//! tokens and keys are. Instead it is sealed with AES-256-GCM under a key that lives outside
//! the database: a copy or backup of the database then carries no usable secret.
//!
//! The key file holds one key per line, 64 hex characters (32 bytes); blank lines and `#`
//! comments (whole lines, or after a key) are ignored. The first key seals; every key opens,
//! so a new key is added as the first line (`roster secret-key rotate`), secrets are re-sealed
//! with it (`roster secret-key reseal`), and only then is the old line removed. A key is known
//! by its id, the first 8 hex characters of its SHA-256, which the sealed text names:
//!
//! ```text
//! rsenc1:<key id>:<base64url, no padding, of nonce (12 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! The associated data is the webhook's id, so a sealed text moved to another webhook's row
//! does not open. A text without the `rsenc1:` prefix is a secret stored in clear before
//! sealing existed, and is used as it is.
//!
//! A [`KeyRing`] re-reads its file before it seals, when it meets a key id it does not hold
//! (at most once per 10 seconds), and on [`KeyRing::reload`] (SIGHUP): running servers pick up
//! a rotated file without a restart. No key, and no part of the file, ever appears in an error
//! or a log line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use roster_store::{SecretTexts, Webhook};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What every sealed text starts with (format version 1).
pub const SEALED_PREFIX: &str = "rsenc1:";
/// Bytes in a key.
pub const KEY_LEN: usize = 32;
/// The GCM tag's length.
const TAG_LEN: usize = 16;
/// The least time between two reads of the key file caused by unknown key ids.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Where a ring's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (`--secret-key-file`, or the default beside a SQLite database).
    File(PathBuf),
    /// One random key held in memory (an in-memory database, which goes with the process).
    Memory,
    /// No key: PostgreSQL without `--secret-key-file`. Sealing is refused; secrets stored in
    /// clear still open.
    Absent,
}

/// Why a secret could not be sealed or opened. The messages name key ids and the key file,
/// never a key or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No key to seal with.
    #[error(
        "webhook signing secrets are stored sealed with a key kept outside the database, and \
         this database has no default key file (PostgreSQL): give every node and the roster CLI \
         the same key file with --secret-key-file FILE (or ROSTER_SECRET_KEY_FILE, or \
         secret_key_file in roster.toml); `roster secret-key rotate --secret-key-file FILE` \
         creates one (docs/security.md, \"Secrets at rest\")"
    )]
    NoKey,
    /// The text names a key the ring does not hold.
    #[error("{}", unknown_key(.id, .keys))]
    UnknownKey {
        /// The key id the text names.
        id: String,
        /// Where the ring's keys come from.
        keys: KeySource,
    },
    /// The key is held but the text does not open: altered, truncated, or moved from another
    /// webhook's row.
    #[error(
        "the webhook secret sealed with key {id} does not open with that key: the stored text \
         was altered or belongs to another webhook; rotate the webhook's secret"
    )]
    Damaged {
        /// The key id the text names.
        id: String,
    },
    /// The system's random generator failed.
    #[error("the system random generator failed; the secret was not sealed")]
    Random,
}

fn unknown_key(id: &str, source: &KeySource) -> String {
    match source {
        KeySource::File(p) => format!(
            "the webhook secret is sealed with key {id}, which --secret-key-file {} does not \
             hold; add that key back to the file",
            p.display()
        ),
        KeySource::Memory => format!(
            "the webhook secret is sealed with key {id}, which this process's in-memory key \
             does not hold (an in-memory database has a new key at every start); rotate the \
             webhook's secret"
        ),
        KeySource::Absent => format!(
            "the webhook secret is sealed with key {id}, and no --secret-key-file was given; \
             give this node the key file that holds key {id}"
        ),
    }
}

/// One key of a ring.
struct Key {
    id: String,
    key: LessSafeKey,
}

impl Key {
    fn new(bytes: &[u8; KEY_LEN]) -> Option<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            id: key_id(bytes),
            key: LessSafeKey::new(key),
        })
    }
}

/// The id of a key: the first 8 hex characters of its SHA-256.
fn key_id(bytes: &[u8]) -> String {
    let mut id = hex::encode(Sha256::digest(bytes));
    id.truncate(8);
    id
}

/// The keys that seal (the first) and open (all) webhook secrets; see the module's doc.
pub struct KeyRing {
    source: KeySource,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When an unknown key id last caused a read of the file.
    last_reload: Mutex<Option<Instant>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("source", &self.source)
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    fn with(source: KeySource, keys: Vec<Key>) -> Self {
        Self {
            source,
            keys: RwLock::new(Arc::new(keys)),
            last_reload: Mutex::new(None),
        }
    }

    /// Reads a key file.
    ///
    /// # Errors
    /// A message naming the file (and the line, for a line that is not a key).
    pub fn load(path: &Path) -> Result<Self, String> {
        let keys = read_keys(path)?;
        Ok(Self::with(KeySource::File(path.to_owned()), keys))
    }

    /// Reads a key file, creating it first (mode 0600, one new key) if it does not exist: the
    /// default key file beside a SQLite database. Several processes may do this at once: the
    /// file appears whole, once.
    ///
    /// # Errors
    /// When the file cannot be created or read.
    pub fn load_or_create(path: &Path, note: &str) -> Result<Self, String> {
        if !path.exists() {
            let line = new_key_line(note).ok_or_else(|| SecretError::Random.to_string())?;
            let tmp = temp_path(path);
            write_private(&tmp, line.as_bytes())?;
            // A hard link never replaces: of several processes creating the file at once, one
            // wins and the others read its file.
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(format!("creating the key file {}: {e}", path.display()));
                }
            }
        }
        Self::load(path)
    }

    /// One random key, in memory only (none if the system's random generator fails: sealing
    /// is then refused).
    #[must_use]
    pub fn ephemeral() -> Self {
        let keys = random_key()
            .and_then(|k| Key::new(&k))
            .into_iter()
            .collect();
        Self::with(KeySource::Memory, keys)
    }

    /// No key (PostgreSQL without `--secret-key-file`): sealing is refused.
    #[must_use]
    pub fn absent() -> Self {
        Self::with(KeySource::Absent, Vec::new())
    }

    /// Where the keys come from.
    #[must_use]
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn current(&self) -> Arc<Vec<Key>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ids of the keys held, the sealing one first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<String> {
        self.current().iter().map(|k| k.id.clone()).collect()
    }

    /// Reads the key file again (SIGHUP); returns how many keys it holds. Without a file,
    /// nothing to do.
    ///
    /// # Errors
    /// When the file does not load; the keys held stay.
    pub fn reload(&self) -> Result<usize, String> {
        let KeySource::File(path) = &self.source else {
            return Ok(self.current().len());
        };
        let keys = read_keys(path)?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        Ok(n)
    }

    /// Reads the file again when an unknown key id was met, unless that happened less than
    /// [`RELOAD_INTERVAL`] ago.
    fn reload_for_unknown(&self) {
        if !matches!(self.source, KeySource::File(_)) {
            return;
        }
        {
            let mut last = self
                .last_reload
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < RELOAD_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "re-reading the secret key file failed; keeping the keys held");
        }
    }

    /// Seals `secret` for the webhook `webhook_id` with the first key of the file, read again
    /// now (so that a rotated file seals with its new key at once).
    ///
    /// # Errors
    /// [`SecretError::NoKey`] without a key; [`SecretError::Random`].
    pub fn seal(&self, secret: &str, webhook_id: &str) -> Result<String, SecretError> {
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "re-reading the secret key file failed; sealing with the first key held");
        }
        let keys = self.current();
        let key = keys.first().ok_or(SecretError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut buf = secret.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(webhook_id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Random)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + buf.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&buf);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Opens a stored secret of the webhook `webhook_id`: a sealed text with the key it names,
    /// a text in clear (stored before sealing existed) as it is.
    ///
    /// # Errors
    /// [`SecretError::UnknownKey`] when no key held has the id the text names (after reading
    /// the file again, at most every [`RELOAD_INTERVAL`]); [`SecretError::Damaged`] when the
    /// text does not open with it.
    pub fn open(&self, stored: &str, webhook_id: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, data) = rest.split_once(':').unwrap_or((rest, ""));
        let damaged = || SecretError::Damaged { id: id.to_owned() };
        let find = |keys: &[Key]| keys.iter().position(|k| k.id == id);
        let mut keys = self.current();
        if find(&keys).is_none() {
            self.reload_for_unknown();
            keys = self.current();
        }
        let key = find(&keys)
            .and_then(|i| keys.get(i))
            .ok_or_else(|| SecretError::UnknownKey {
                id: id.to_owned(),
                keys: self.source.clone(),
            })?;
        let blob = URL_SAFE_NO_PAD.decode(data).map_err(|_| damaged())?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(damaged());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged())?;
        // The opened secret is wiped from this buffer when it goes; the caller's copy is its
        // to wipe (the delivery worker does).
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(webhook_id.as_bytes()), &mut buf)
            .map_err(|_| damaged())?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged())
    }

    /// The secrets that sign a delivery of `hook` at `now` ([`Webhook::signing_secrets`]),
    /// opened.
    ///
    /// # Errors
    /// When one of them does not open.
    pub fn signing_secrets(
        &self,
        hook: &Webhook,
        now: time::OffsetDateTime,
    ) -> Result<Vec<String>, SecretError> {
        hook.signing_secrets(now)
            .into_iter()
            .map(|s| self.open(s, &hook.id))
            .collect()
    }

    /// The webhook's stored secret texts sealed with the first key, or `None` when they all
    /// are already (secrets in clear and secrets sealed with other keys are re-sealed).
    ///
    /// # Errors
    /// When a text does not open, or sealing fails.
    pub fn resealed(&self, hook: &Webhook) -> Result<Option<SecretTexts>, SecretError> {
        let current = self
            .key_ids()
            .into_iter()
            .next()
            .ok_or(SecretError::NoKey)?;
        let texts = hook.secret_texts();
        let up_to_date = |t: &str| sealed_key_id(t).is_some_and(|id| id == current);
        if up_to_date(&texts.secret) && texts.previous_secret.as_deref().is_none_or(up_to_date) {
            return Ok(None);
        }
        let reseal = |t: &str| self.seal(&self.open(t, &hook.id)?, &hook.id);
        Ok(Some(SecretTexts {
            secret: reseal(&texts.secret)?,
            previous_secret: texts.previous_secret.as_deref().map(reseal).transpose()?,
        }))
    }
}

/// Whether a stored secret text is sealed (rather than stored in clear).
#[must_use]
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The key id a sealed text names; `None` for a text in clear.
#[must_use]
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(SEALED_PREFIX)?;
    Some(rest.split_once(':').map_or(rest, |(id, _)| id))
}

fn random_key() -> Option<[u8; KEY_LEN]> {
    let mut k = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut k).ok()?;
    Some(k)
}

/// A new key as a key-file line, with its id and `note` in a trailing comment.
fn new_key_line(note: &str) -> Option<Zeroizing<String>> {
    let k = Zeroizing::new(random_key()?);
    let note = note.replace(['\n', '\r'], " ");
    let hex = Zeroizing::new(hex::encode(*k));
    Some(Zeroizing::new(format!(
        "{} # key {}: {note}\n",
        *hex,
        key_id(&*k)
    )))
}

/// Parses a key file's text: one key per line, 64 hex characters; blank lines and `#`
/// comments ignored. Errors name the line, never its content.
fn parse_keys(text: &str) -> Result<Vec<Key>, String> {
    let mut keys: Vec<Key> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let word = line.split('#').next().unwrap_or("").trim();
        if word.is_empty() {
            continue;
        }
        if word.len() != 2 * KEY_LEN {
            return Err(format!(
                "line {n}: a key is 64 hex characters (32 bytes), this line has {}",
                word.chars().count()
            ));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(word, &mut *bytes)
            .map_err(|_| format!("line {n}: a key is 64 hex characters (0-9, a-f)"))?;
        let key = Key::new(&bytes).ok_or_else(|| format!("line {n}: not a usable key"))?;
        if !keys.iter().any(|k| k.id == key.id) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn read_keys(path: &Path) -> Result<Vec<Key>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("reading the secret key file {}: {e}", path.display()))?,
    );
    let keys = parse_keys(&text).map_err(|e| format!("secret key file {}, {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!(
            "the secret key file {} holds no key; `roster secret-key rotate --secret-key-file \
             {}` adds one",
            path.display(),
            path.display()
        ));
    }
    Ok(keys)
}

/// A warning when the key file may be read by other users than its owner (it is used anyway).
#[must_use]
pub fn loose_permissions(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the secret key file {} is open to other users than its owner (mode {mode:03o}); \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        crate::tokens::random_alnum(8)
    ))
}

/// Writes a new file readable by its owner only, synced.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = opts.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(path);
        format!("writing {}: {e}", path.display())
    })
}

/// `roster secret-key rotate`: writes a new key as the first line of the key file, keeping the
/// lines below, atomically (a new file, mode 0600, renamed over the old one); creates the file
/// when it does not exist. Returns the new key's id.
///
/// # Errors
/// When the file exists but does not parse (it is left alone), or cannot be written.
pub fn rotate_file(path: &Path, note: &str) -> Result<String, String> {
    let old = Zeroizing::new(match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(format!(
                "reading the secret key file {}: {e}",
                path.display()
            ))
        }
    });
    parse_keys(&old).map_err(|e| {
        format!(
            "secret key file {}, {e}; fix the file first (it was not changed)",
            path.display()
        )
    })?;
    let line = new_key_line(note).ok_or_else(|| SecretError::Random.to_string())?;
    let id = parse_keys(&line)?
        .first()
        .map(|k| k.id.clone())
        .ok_or("internal: the new key did not parse")?;
    let mut text = line;
    text.push_str(&old);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let tmp = temp_path(path);
    write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("replacing the secret key file {}: {e}", path.display())
    })?;
    // The rename itself, made durable (best effort: not every file system syncs directories).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

    fn file_with(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("secret.key");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn seal_and_open_round_trip_with_the_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with(
            dir.path(),
            &format!("# roster keys\n\n{K1}  # newest\n{K2}\n"),
        );
        let ring = KeyRing::load(&p).unwrap();
        let ids = ring.key_ids();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], key_id(&hex::decode(K1).unwrap()));
        let sealed = ring.seal("whsec_abc", "wh_1").unwrap();
        assert!(
            sealed.starts_with(&format!("rsenc1:{}:", ids[0])),
            "{sealed}"
        );
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(sealed_key_id(&sealed), Some(ids[0].as_str()));
        assert_eq!(ring.open(&sealed, "wh_1").unwrap(), "whsec_abc");
        // A fresh nonce each time.
        assert_ne!(ring.seal("whsec_abc", "wh_1").unwrap(), sealed);
        // Every key opens: the second key seals once it is first.
        let p2 = file_with(dir.path(), &format!("{K2}\n{K1}\n"));
        let other = KeyRing::load(&p2).unwrap();
        let by_k2 = other.seal("whsec_x", "wh_2").unwrap();
        std::fs::write(&p, format!("{K1}\n{K2}\n")).unwrap();
        let ring = KeyRing::load(&p).unwrap();
        assert_eq!(ring.open(&by_k2, "wh_2").unwrap(), "whsec_x");
    }

    #[test]
    fn another_webhook_or_an_altered_text_does_not_open() {
        let ring = KeyRing::ephemeral();
        let sealed = ring.seal("whsec_abc", "wh_1").unwrap();
        let id = ring.key_ids()[0].clone();
        let err = ring.open(&sealed, "wh_2").unwrap_err();
        assert_eq!(err, SecretError::Damaged { id: id.clone() });
        assert!(err.to_string().contains(&id) && err.to_string().contains("rotate"));
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(
            ring.open(&altered, "wh_1"),
            Err(SecretError::Damaged { .. })
        ));
        for bad in [
            format!("rsenc1:{id}"),
            format!("rsenc1:{id}:"),
            format!("rsenc1:{id}:!!"),
        ] {
            assert!(
                matches!(ring.open(&bad, "wh_1"), Err(SecretError::Damaged { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unknown_key_id_is_named_with_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = KeyRing::load(&file_with(dir.path(), K2))
            .unwrap()
            .seal("whsec_abc", "wh_1")
            .unwrap();
        let k2 = sealed_key_id(&sealed).unwrap().to_owned();
        let p = file_with(dir.path(), K1);
        let ring = KeyRing::load(&p).unwrap();
        let err = ring.open(&sealed, "wh_1").unwrap_err().to_string();
        assert!(err.contains(&format!("sealed with key {k2}")), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains("add that key back to the file"), "{err}");
        assert!(!err.contains(K1) && !err.contains(K2) && !err.contains("whsec_"));
        // The file gains the key: a ring reads it again when it meets the unknown id.
        let running = KeyRing::load(&p).unwrap();
        std::fs::write(&p, format!("{K1}\n{K2}\n")).unwrap();
        assert_eq!(running.open(&sealed, "wh_1").unwrap(), "whsec_abc");
        // Without a key file.
        let err = KeyRing::absent().open(&sealed, "wh_1").unwrap_err();
        assert!(err.to_string().contains("--secret-key-file"), "{err}");
    }

    #[test]
    fn unknown_ids_read_the_file_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = KeyRing::load(&file_with(dir.path(), K2))
            .unwrap()
            .seal("whsec_abc", "wh_1")
            .unwrap();
        let p = file_with(dir.path(), K1);
        let ring = KeyRing::load(&p).unwrap();
        assert!(ring.open(&sealed, "wh_1").is_err());
        std::fs::write(&p, format!("{K1}\n{K2}\n")).unwrap();
        assert!(
            ring.open(&sealed, "wh_1").is_err(),
            "read again less than 10 s after the last read"
        );
        // An explicit reload (SIGHUP) is not rate-limited.
        assert_eq!(ring.reload().unwrap(), 2);
        assert!(ring.open(&sealed, "wh_1").is_ok());
    }

    #[test]
    fn secrets_in_clear_are_used_as_they_are() {
        let ring = KeyRing::absent();
        assert_eq!(ring.open("whsec_legacy", "wh_1").unwrap(), "whsec_legacy");
        assert!(!is_sealed("whsec_legacy"));
        assert_eq!(sealed_key_id("whsec_legacy"), None);
        assert_eq!(ring.seal("whsec_x", "wh_1"), Err(SecretError::NoKey));
    }

    #[test]
    fn key_file_errors_name_the_line_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let short = &K1[..63];
        let nothex = format!("{}zz", &K1[..62]);
        for (text, says) in [
            (
                format!("# c\n{K1}\n{short}\n"),
                "line 3: a key is 64 hex characters",
            ),
            (
                format!("\n{nothex}\n"),
                "line 2: a key is 64 hex characters (0-9",
            ),
            (format!("{K1}{K1}\n"), "line 1: a key is 64 hex characters"),
            ("# only a comment\n\n".to_owned(), "holds no key"),
        ] {
            let p = file_with(dir.path(), &text);
            let err = KeyRing::load(&p).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(err.contains(&p.display().to_string()), "{err}");
            assert!(
                !err.contains(&K1[..16]) && !err.contains(&nothex[..16]),
                "{err}"
            );
        }
        let err = KeyRing::load(&dir.path().join("missing.key")).unwrap_err();
        assert!(err.contains("missing.key"), "{err}");
    }

    #[test]
    fn the_default_file_is_created_private_once_and_rotation_puts_the_new_key_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roster.db.key");
        let ring = KeyRing::load_or_create(&p, "created beside roster.db").unwrap();
        assert_eq!(ring.key_ids().len(), 1);
        assert_eq!(loose_permissions(&p), None, "created with mode 0600");
        let first = ring.key_ids()[0].clone();
        let again = KeyRing::load_or_create(&p, "x").unwrap();
        assert_eq!(
            again.key_ids(),
            vec![first.clone()],
            "an existing file is kept"
        );
        let sealed = ring.seal("whsec_abc", "wh_1").unwrap();

        let new = rotate_file(&p, "rotated").unwrap();
        assert_ne!(new, first);
        assert_eq!(
            KeyRing::load(&p).unwrap().key_ids(),
            [new.clone(), first.clone()]
        );
        assert_eq!(loose_permissions(&p), None);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains(&format!("# key {new}: rotated")));
        // The running ring seals with the new key at once, and still opens the old texts.
        let resealed = ring.seal("whsec_abc", "wh_1").unwrap();
        assert_eq!(sealed_key_id(&resealed), Some(new.as_str()));
        assert_eq!(ring.open(&sealed, "wh_1").unwrap(), "whsec_abc");

        // A broken file is not rotated.
        std::fs::write(&p, "nonsense\n").unwrap();
        assert!(rotate_file(&p, "x").unwrap_err().contains("line 1"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "nonsense\n");
        // A missing file is created.
        let fresh = dir.path().join("new.key");
        let id = rotate_file(&fresh, "first").unwrap();
        assert_eq!(KeyRing::load(&fresh).unwrap().key_ids(), [id]);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_others_is_used_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = file_with(dir.path(), K1);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = loose_permissions(&p).unwrap();
        assert!(
            warning.contains("644") && warning.contains("chmod 600"),
            "{warning}"
        );
        assert!(KeyRing::load(&p).is_ok());
    }

    #[test]
    fn reseal_moves_every_text_to_the_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with(dir.path(), K2);
        let old = KeyRing::load(&p).unwrap();
        let mut hook = Webhook {
            id: "wh_1".into(),
            tenant_id: None,
            url: "https://example.com/hook".into(),
            description: None,
            event_types: Vec::new(),
            secret: old.seal("whsec_new", "wh_1").unwrap(),
            previous_secret: Some("whsec_legacy".into()),
            previous_expires_at: None,
            enabled: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        std::fs::write(&p, format!("{K1}\n{K2}\n")).unwrap();
        let ring = KeyRing::load(&p).unwrap();
        let k1 = ring.key_ids()[0].clone();
        let texts = ring.resealed(&hook).unwrap().unwrap();
        assert_eq!(sealed_key_id(&texts.secret), Some(k1.as_str()));
        let prev = texts.previous_secret.clone().unwrap();
        assert_eq!(sealed_key_id(&prev), Some(k1.as_str()));
        assert_eq!(ring.open(&texts.secret, "wh_1").unwrap(), "whsec_new");
        assert_eq!(ring.open(&prev, "wh_1").unwrap(), "whsec_legacy");
        hook.secret = texts.secret;
        hook.previous_secret = texts.previous_secret;
        assert_eq!(ring.resealed(&hook).unwrap(), None, "nothing left to do");
        assert_eq!(
            ring.signing_secrets(&hook, time::OffsetDateTime::UNIX_EPOCH)
                .unwrap(),
            ["whsec_new"]
        );
    }
}
