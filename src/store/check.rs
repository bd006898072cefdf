//! The start-up integrity check: before hearth serves a database it reads every record of every
//! tree and decodes it as the record type of its tree.
//!
//! Why everything, and not a sample: sled verifies a CRC of each page fragment it reads from
//! disk, but it reads a page only when something asks for it, so damage in old history would
//! otherwise surface weeks later as an `internal` error on one history page. Reading every
//! record at open forces every page off the disk through that CRC check, and decoding it catches
//! damage sled cannot see (a record from a buggy or foreign writer). The cost is one pass over
//! the database; docs/performance.md ("Start-up integrity check") has the measured figures.
//!
//! A database that fails is refused with [`StoreError::Damaged`], whose message says how to
//! restore the last backup.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::accounts::{SessionRecord, UserRecord};
use super::identities::IdentityRecord;
use super::jobs::JobRecord;
use super::rooms::{BanRecord, Item, MemberRecord, RoomRecord};
use super::{Result, StoreError, CLEAN_STOP_KEY, ID_FLOOR_KEY, SCHEMA_KEY};

/// What the check read.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckReport {
    pub trees: usize,
    pub records: u64,
    pub bytes: u64,
    pub took: Duration,
}

/// Checks one value; answers what is wrong with it.
type ValueCheck = fn(&[u8]) -> std::result::Result<(), String>;

/// The shape of one tree's records: keys of exactly `key_len` bytes (`None`: any length) and
/// values that pass `value`.
#[derive(Clone, Copy)]
struct Shape {
    key_len: Option<usize>,
    value: ValueCheck,
}

const fn shape(key_len: Option<usize>, value: ValueCheck) -> Shape {
    Shape { key_len, value }
}

fn json<T: DeserializeOwned>(raw: &[u8]) -> std::result::Result<(), String> {
    serde_json::from_slice::<T>(raw)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn exactly<const N: usize>(raw: &[u8]) -> std::result::Result<(), String> {
    if raw.len() == N {
        Ok(())
    } else {
        Err(format!("value is {} bytes, not {N}", raw.len()))
    }
}

fn empty(raw: &[u8]) -> std::result::Result<(), String> {
    if raw.is_empty() {
        Ok(())
    } else {
        Err(format!("value is {} bytes, not empty", raw.len()))
    }
}

fn any(_: &[u8]) -> std::result::Result<(), String> {
    Ok(())
}

/// Room codes are 6 bytes; user ids and seqs are u64 big-endian.
const CODE: usize = 6;
const ID: usize = 8;

/// Every tree hearth writes, with the shape of its records (see the modules that own them).
fn shape_of(tree: &[u8]) -> Option<Shape> {
    Some(match tree {
        // Checked key by key in `check_meta`.
        b"meta" => shape(None, any),
        b"users" => shape(Some(ID), json::<UserRecord>),
        b"usernames" => shape(None, exactly::<ID>),
        b"sessions" => shape(None, json::<SessionRecord>),
        b"user_sessions" => shape(None, empty),
        b"identities" => shape(None, exactly::<ID>),
        b"user_identities" => shape(Some(ID), json::<Vec<IdentityRecord>>),
        b"rooms" => shape(Some(CODE), json::<RoomRecord>),
        b"members" => shape(Some(CODE + ID), json::<MemberRecord>),
        b"bans" => shape(Some(CODE + ID), json::<BanRecord>),
        b"items" => shape(Some(CODE + ID), json::<Item>),
        b"user_rooms" => shape(Some(ID + CODE), exactly::<ID>),
        b"bot_jobs" => shape(None, json::<JobRecord>),
        b"bot_kv" => shape(None, any),
        // sled's own default tree; hearth keeps nothing in it.
        b"__sled__default" => shape(None, any),
        _ => return None,
    })
}

/// Reads and decodes every record of every tree of `db` (the database in `dir`).
pub(super) fn verify(db: &sled::Db, dir: &Path) -> Result<CheckReport> {
    let started = Instant::now();
    let damaged = |what: String, detail: String| StoreError::Damaged {
        dir: dir.to_path_buf(),
        what,
        detail,
    };
    check_meta(db, dir)?;
    let mut names = db.tree_names();
    names.sort();
    let mut report = CheckReport::default();
    for name in names {
        let label = String::from_utf8_lossy(&name).into_owned();
        // A tree this build does not know (written by a newer hearth, which the schema version
        // would have refused already, or by hand) is still read through, for the CRC checks.
        let Shape {
            key_len,
            value: decode,
        } = shape_of(&name).unwrap_or(shape(None, any));
        let tree = db
            .open_tree(&name)
            .map_err(|e| damaged(format!("tree `{label}`"), e.to_string()))?;
        for entry in tree.iter() {
            let (key, value) =
                entry.map_err(|e| damaged(format!("tree `{label}`"), e.to_string()))?;
            if let Some(len) = key_len {
                if key.len() != len {
                    return Err(damaged(
                        format!("tree `{label}`, key {}", hex(&key)),
                        format!("key is {} bytes, not {len}", key.len()),
                    ));
                }
            }
            decode(&value).map_err(|e| damaged(format!("tree `{label}`, key {}", hex(&key)), e))?;
            report.records += 1;
            report.bytes += (key.len() + value.len()) as u64;
        }
        report.trees += 1;
    }
    report.took = started.elapsed();
    Ok(report)
}

/// `meta` holds the schema version (4 bytes), in a restored database the id floor (8), and
/// the marker of the last clean stop (8).
fn check_meta(db: &sled::Db, dir: &Path) -> Result<()> {
    let meta = db.open_tree("meta")?;
    for entry in meta.iter() {
        let (key, value) = entry.map_err(|e| StoreError::Damaged {
            dir: dir.to_path_buf(),
            what: "tree `meta`".into(),
            detail: e.to_string(),
        })?;
        let expected = match key.as_ref() {
            k if k == SCHEMA_KEY => 4,
            k if k == ID_FLOOR_KEY => 8,
            k if k == CLEAN_STOP_KEY => 8,
            _ => continue,
        };
        if value.len() != expected {
            return Err(StoreError::Damaged {
                dir: dir.to_path_buf(),
                what: format!("tree `meta`, key {}", String::from_utf8_lossy(&key)),
                detail: format!("value is {} bytes, not {expected}", value.len()),
            });
        }
    }
    Ok(())
}

/// Keys are shown in hex: most are binary (big-endian ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let shown = &bytes[..bytes.len().min(64)];
    let mut out = String::with_capacity(shown.len() * 2 + 3);
    for b in shown {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    if shown.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{code, Seq};
    use crate::store::rooms::Item;
    use crate::store::Store;

    fn refused(dir: &Path) -> (String, String) {
        match Store::open(dir) {
            Err(StoreError::Damaged { what, detail, .. }) => {
                let text = Store::open(dir).err().map(|e| e.to_string()).unwrap();
                assert!(text.contains("hearth restore"), "{text}");
                assert!(text.contains("docs/operations.md"), "{text}");
                (what, detail)
            }
            Err(other) => panic!("refused, but not as damaged: {other}"),
            Ok(_) => panic!("a damaged store was opened"),
        }
    }

    #[tokio::test]
    async fn a_record_that_does_not_decode_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let good = Item::chat(Seq::FIRST, 1, 0, "ann", "fine".into());
            store.put_item(&code("ABCDEF"), &good).unwrap();
            let mut key = b"ABCDEF".to_vec();
            key.extend_from_slice(&2u64.to_be_bytes());
            store
                .trees()
                .unwrap()
                .items
                .insert(key, b"{\"seq\":2,".as_slice())
                .unwrap();
            store.flush_blocking().unwrap();
        }
        let (what, detail) = refused(dir.path());
        assert!(what.contains("`items`"), "{what}");
        assert!(what.contains("4142434445460000000000000002"), "{what}");
        assert!(detail.contains("EOF"), "{detail}");
    }

    #[tokio::test]
    async fn a_key_of_the_wrong_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .trees()
                .unwrap()
                .users
                .insert(b"short", b"{}".as_slice())
                .unwrap();
            store.flush_blocking().unwrap();
        }
        let (what, detail) = refused(dir.path());
        assert!(what.contains("`users`"), "{what}");
        assert!(detail.contains("not 8"), "{detail}");
    }

    #[tokio::test]
    async fn records_without_a_schema_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_item(
                    &code("ABCDEF"),
                    &Item::chat(Seq::new(1), 1, 0, "ann", "x".into()),
                )
                .unwrap();
            store
                .trees()
                .unwrap()
                .db
                .open_tree("meta")
                .unwrap()
                .clear()
                .unwrap();
            store.flush_blocking().unwrap();
        }
        let (what, detail) = refused(dir.path());
        assert!(what.contains("`meta`"), "{what}");
        assert!(detail.contains("schema version is missing"), "{detail}");
    }

    #[tokio::test]
    async fn a_version_1_store_is_migrated_and_counts_its_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_item(
                    &code("ABCDEF"),
                    &Item::chat(Seq::new(1), 1, 0, "ann", "x".into()),
                )
                .unwrap();
            store.set_schema_version_for_test(1).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let meta = store.trees().unwrap().db.open_tree("meta").unwrap();
        let version = meta.get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(
            version.as_ref(),
            &super::super::SCHEMA_VERSION.to_be_bytes()
        );
        let report = verify(&store.trees().unwrap().db, dir.path()).unwrap();
        assert_eq!(report.records, 2, "the schema version and the item");
    }
}
