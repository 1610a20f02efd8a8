//! Who may call Trailkeeper: accounts, their root and IAM-style users, access keys, and
//! the role each key carries.
//!
//! Secrets live only here and in the SigV4 check; they never reach a log line, an error
//! message or an audit record.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trailkeeper_store::AccountScope;

/// What a principal may do within the accounts it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in its account.
    Admin,
    /// Read and query only.
    Reader,
    /// Ingest only.
    Writer,
}

impl FromStr for Role {
    type Err = ();
    fn from_str(text: &str) -> Result<Role, ()> {
        match text {
            "admin" => Ok(Role::Admin),
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            _ => Err(()),
        }
    }
}

/// The kind of access an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Ingest,
    Manage,
}

impl Role {
    pub fn allows(self, access: Access) -> bool {
        matches!((self, access), (Role::Admin, _) | (Role::Reader, Access::Read) | (Role::Writer, Access::Ingest))
    }
}

/// A user as the configuration declares it.
#[derive(Clone)]
pub struct UserSpec {
    pub name: String,
    pub account_id: String,
    pub role: Role,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Other accounts this user reaches: account IDs, or "*" for all.
    pub accounts: Vec<String>,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .field("access_key_id", &self.access_key_id)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// The identity behind a verified request, as CloudTrail's `userIdentity` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    /// None for the account's root; the user name otherwise.
    pub user_name: Option<String>,
    pub access_key_id: String,
    pub role: Role,
    /// Accounts beyond its own that it reaches.
    pub extra_accounts: ExtraAccounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraAccounts {
    None,
    Some(Vec<String>),
    All,
}

impl Principal {
    pub fn identity_type(&self) -> &'static str {
        if self.user_name.is_some() { "IAMUser" } else { "Root" }
    }

    pub fn arn(&self) -> String {
        match &self.user_name {
            Some(name) => format!("arn:aws:iam::{}:user/{name}", self.account_id),
            None => format!("arn:aws:iam::{}:root", self.account_id),
        }
    }

    /// IAM's unique ID: the account for root, a stable `AIDA…` ID for a user.
    pub fn principal_id(&self) -> String {
        match &self.user_name {
            None => self.account_id.clone(),
            Some(name) => {
                let digest = Sha256::digest(format!("{}:{name}", self.account_id));
                let mut id = String::from("AIDA");
                id.extend(
                    digest
                        .iter()
                        .take(17)
                        .map(|byte| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[usize::from(byte % 32)])),
                );
                id
            }
        }
    }

    /// Whether the principal may act on `account_id`'s data.
    pub fn reaches(&self, account_id: &str) -> bool {
        account_id == self.account_id
            || match &self.extra_accounts {
                ExtraAccounts::None => false,
                ExtraAccounts::All => true,
                ExtraAccounts::Some(accounts) => accounts.iter().any(|a| a == account_id),
            }
    }

    /// The accounts whose Event History the principal reads.
    pub fn read_scope(&self) -> AccountScope {
        match &self.extra_accounts {
            ExtraAccounts::All => AccountScope::All,
            ExtraAccounts::None => AccountScope::Only(vec![self.account_id.clone()]),
            ExtraAccounts::Some(accounts) => {
                let mut all = accounts.clone();
                all.push(self.account_id.clone());
                all.sort();
                all.dedup();
                AccountScope::Only(all)
            }
        }
    }
}

/// A secret access key that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Every access key Trailkeeper accepts.
#[derive(Debug, Default)]
pub struct Identities {
    by_access_key: HashMap<String, (Arc<Principal>, Secret)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("access key {0} is configured twice")]
    DuplicateKey(String),
    #[error("cannot read or write the root credentials file {path}: {detail}")]
    CredentialsFile { path: String, detail: String },
}

impl Identities {
    pub fn new(root_account: &str, root: &RootCredentials, users: &[UserSpec]) -> Result<Identities, IdentityError> {
        let mut identities = Identities::default();
        identities.insert(
            Principal {
                account_id: root_account.to_owned(),
                user_name: None,
                access_key_id: root.access_key_id.clone(),
                role: Role::Admin,
                extra_accounts: ExtraAccounts::None,
            },
            root.secret_access_key.clone(),
        )?;
        for user in users {
            let extra_accounts = if user.accounts.iter().any(|a| a == "*") {
                ExtraAccounts::All
            } else if user.accounts.is_empty() {
                ExtraAccounts::None
            } else {
                ExtraAccounts::Some(user.accounts.clone())
            };
            identities.insert(
                Principal {
                    account_id: user.account_id.clone(),
                    user_name: Some(user.name.clone()),
                    access_key_id: user.access_key_id.clone(),
                    role: user.role,
                    extra_accounts,
                },
                user.secret_access_key.clone(),
            )?;
        }
        Ok(identities)
    }

    fn insert(&mut self, principal: Principal, secret: String) -> Result<(), IdentityError> {
        let key = principal.access_key_id.clone();
        if self.by_access_key.insert(key.clone(), (Arc::new(principal), Secret(secret))).is_some() {
            return Err(IdentityError::DuplicateKey(key));
        }
        Ok(())
    }

    pub fn find(&self, access_key_id: &str) -> Option<&(Arc<Principal>, Secret)> {
        self.by_access_key.get(access_key_id)
    }
}

/// The root credentials of the installation's account.
#[derive(Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Where the root credentials came from, so that `serve` can tell the operator once.
#[derive(Debug, PartialEq, Eq)]
pub enum RootOrigin {
    Configured,
    Stored,
    Generated,
}

pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials.json";

/// The configured root credentials, or those stored in the data directory, or new ones
/// generated and stored there (readable by the owner only).
pub fn root_credentials(
    data_dir: &Path,
    configured: Option<&(String, String)>,
) -> Result<(RootCredentials, RootOrigin), IdentityError> {
    if let Some((access_key_id, secret_access_key)) = configured {
        return Ok((
            RootCredentials { access_key_id: access_key_id.clone(), secret_access_key: secret_access_key.clone() },
            RootOrigin::Configured,
        ));
    }
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    let failure = |detail: String| IdentityError::CredentialsFile { path: path.display().to_string(), detail };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let credentials: RootCredentials =
                serde_json::from_slice(&bytes).map_err(|error| failure(error.to_string()))?;
            Ok((credentials, RootOrigin::Stored))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let credentials = generate_root_credentials();
            let text = serde_json::to_vec_pretty(&credentials).map_err(|error| failure(error.to_string()))?;
            write_private_file(&path, &text).map_err(|error| failure(error.to_string()))?;
            Ok((credentials, RootOrigin::Generated))
        }
        Err(error) => Err(failure(error.to_string())),
    }
}

fn generate_root_credentials() -> RootCredentials {
    const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let mut pick = |alphabet: &[u8], n: usize| {
        (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect::<String>()
    };
    RootCredentials {
        access_key_id: format!("AKIA{}", pick(KEY_ALPHABET, 16)),
        secret_access_key: pick(SECRET_ALPHABET, 40),
    }
}

/// Writes a file only its owner can read, durably.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, accounts: &[&str]) -> UserSpec {
        UserSpec {
            name: name.into(),
            account_id: "111111111111".into(),
            role,
            access_key_id: format!("AKIA{name:0>16}"),
            secret_access_key: "secret-123".into(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn describes_principals_as_cloudtrail_does() {
        let root =
            RootCredentials { access_key_id: "AKIAROOT000000000000".into(), secret_access_key: "s3cr3t-root".into() };
        let identities = Identities::new("111111111111", &root, &[user("alice", Role::Reader, &[])]).unwrap();
        let (root_principal, _) = identities.find("AKIAROOT000000000000").unwrap();
        assert_eq!(root_principal.arn(), "arn:aws:iam::111111111111:root");
        assert_eq!(root_principal.identity_type(), "Root");
        let (alice, secret) = identities.find(&format!("AKIA{:0>16}", "alice")).unwrap();
        assert_eq!(alice.arn(), "arn:aws:iam::111111111111:user/alice");
        assert!(alice.principal_id().starts_with("AIDA") && alice.principal_id().len() == 21);
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert!(!alice.role.allows(Access::Ingest));
    }

    #[test]
    fn scopes_accounts() {
        let root =
            RootCredentials { access_key_id: "AKIAROOT000000000000".into(), secret_access_key: "s3cr3t-root".into() };
        let identities = Identities::new(
            "111111111111",
            &root,
            &[user("all", Role::Admin, &["*"]), user("two", Role::Admin, &["222222222222"])],
        )
        .unwrap();
        let (all, _) = identities.find(&format!("AKIA{:0>16}", "all")).unwrap();
        assert!(all.reaches("999999999999"));
        assert_eq!(all.read_scope(), AccountScope::All);
        let (two, _) = identities.find(&format!("AKIA{:0>16}", "two")).unwrap();
        assert!(two.reaches("222222222222") && !two.reaches("333333333333"));
    }

    #[test]
    fn generates_and_keeps_root_credentials_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, origin) = root_credentials(dir.path(), None).unwrap();
        assert_eq!(origin, RootOrigin::Generated);
        let mode = std::fs::metadata(dir.path().join(ROOT_CREDENTIALS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, origin) = root_credentials(dir.path(), None).unwrap();
        assert_eq!(origin, RootOrigin::Stored);
        assert_eq!(first.secret_access_key, second.secret_access_key);
        assert!(!format!("{first:?}").contains(&first.secret_access_key));
    }
}
