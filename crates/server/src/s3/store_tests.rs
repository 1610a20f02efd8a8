//! The bucket store's tests: crash leftovers, byte order, write-once locks, delimiter
//! listings, and damage reported instead of served.

use super::*;

const OWNER: &str = "111111111111";

fn store() -> (tempfile::TempDir, BucketStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    (dir, store)
}

fn put(store: &BucketStore, bucket: &str, key: &str, body: &[u8]) -> PutOutcome {
    store.put_object(bucket, key, body, &ObjectMetadata::default(), None).unwrap()
}

fn keys(listing: &Listing) -> Vec<&str> {
    listing.objects.iter().map(|(key, _)| key.as_str()).collect()
}

fn list<'a>(prefix: &'a str, after: &'a str, delimiter: Option<&'a str>, max_keys: usize) -> ListQuery<'a> {
    ListQuery { prefix, after, delimiter, max_keys }
}

#[test]
fn objects_and_metadata_survive_a_reopen() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "eu-west-1").unwrap();
    let metadata = ObjectMetadata {
        content_type: Some("application/json".into()),
        user_metadata: [("signature".to_owned(), "abc".to_owned())].into(),
    };
    let outcome = store.put_object("logs", "a/b.json", b"{\"x\":1}", &metadata, None).unwrap();
    let PutOutcome::Written(info) = outcome else { panic!("{outcome:?}") };
    assert_eq!(info.etag(), format!("\"{}\"", hex::encode(object_file::md5_of(b"{\"x\":1}"))));
    drop(store);

    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    let bucket = store.bucket("logs").unwrap();
    assert_eq!((bucket.owner_account_id.as_str(), bucket.region.as_str()), (OWNER, "eu-west-1"));
    let object = store.get_object("logs", "a/b.json").unwrap();
    assert_eq!(object.body, b"{\"x\":1}");
    assert_eq!(object.head.metadata, metadata);
    assert_eq!(object.head.info, info);
    assert_eq!(store.head_object("logs", "a/b.json").unwrap().metadata, metadata);
}

#[test]
fn object_file_names_do_not_depend_on_the_key() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    let odd_keys = ["../../escape", "a/./b//c", "\u{0}nul", "é €", &"k".repeat(MAX_KEY_BYTES)];
    for key in odd_keys {
        put(&store, "logs", key, key.as_bytes());
    }
    let mut files = Vec::new();
    for fan_out in fs::read_dir(dir.path().join("buckets/logs/objects")).unwrap() {
        for file in fs::read_dir(fan_out.unwrap().path()).unwrap() {
            files.push(file.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    assert_eq!(files.len(), odd_keys.len());
    assert!(files.iter().all(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())), "{files:?}");
    for key in odd_keys {
        assert_eq!(store.get_object("logs", key).unwrap().body, key.as_bytes());
    }
    let too_long = "k".repeat(MAX_KEY_BYTES + 1);
    let error = store.put_object("logs", &too_long, b"", &ObjectMetadata::default(), None).unwrap_err();
    assert_eq!(error.code(), "KeyTooLongError");
}

#[test]
fn a_leftover_temporary_file_is_ignored_and_removed_at_open() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    put(&store, "logs", "kept", b"whole");
    drop(store);
    // What a crash between write and rename leaves: a temporary sibling, possibly torn.
    let fan_out = dir.path().join("buckets/logs/objects").join(object_file::relative_path("lost").parent().unwrap());
    fs::create_dir_all(&fan_out).unwrap();
    let temporary = fan_out.join(format!("{}{TEMPORARY_MARKER}0123456789abcdef", "f".repeat(64)));
    fs::write(&temporary, b"TKS3OBJ1 torn").unwrap();
    // And a bucket whose creation or deletion was interrupted.
    fs::create_dir_all(dir.path().join("buckets/.creating-half-0000000000000000/objects")).unwrap();
    fs::create_dir_all(dir.path().join("buckets/.deleting-gone-0000000000000000/objects")).unwrap();

    // A reader beside a running server skips what writers may still be finishing.
    let reader = BucketStore::open_read_only(&dir.path().join("buckets")).unwrap();
    assert!(temporary.exists());
    assert!(dir.path().join("buckets/.creating-half-0000000000000000").exists());
    assert_eq!(keys(&reader.list_objects("logs", &list("", "", None, 1000)).unwrap()), ["kept"]);
    assert_eq!(reader.get_object("logs", "kept").unwrap().body, b"whole");
    assert_eq!(reader.list_buckets(OWNER).len(), 1);
    drop(reader);

    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    assert!(!temporary.exists());
    assert!(!dir.path().join("buckets/.creating-half-0000000000000000").exists());
    assert!(!dir.path().join("buckets/.deleting-gone-0000000000000000").exists());
    let listing = store.list_objects("logs", &list("", "", None, 1000)).unwrap();
    assert_eq!(keys(&listing), ["kept"]);
    assert_eq!(store.list_buckets(OWNER).len(), 1);
}

#[test]
fn damage_fails_the_open_or_the_read_instead_of_disappearing() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    put(&store, "logs", "k", b"original body");
    let path = dir.path().join("buckets/logs/objects").join(object_file::relative_path("k"));
    // Same length, different bytes: the header still reads, the MD5 does not match.
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let error = store.get_object("logs", "k").unwrap_err();
    assert_eq!(error.code(), "InternalError");
    assert!(matches!(error, S3Error::Store(ref inner) if inner.kind() == trailkeeper_store::ErrorKind::Corrupt));
    drop(store);
    // Cut short: the open names the file.
    bytes.truncate(bytes.len() - 3);
    fs::write(&path, &bytes).unwrap();
    let error = BucketStore::open(&dir.path().join("buckets")).unwrap_err();
    assert_eq!(error.kind(), trailkeeper_store::ErrorKind::Corrupt);
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
}

#[test]
fn listings_are_in_byte_order() {
    let (_dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    for key in ["b", "a", "B", "a/b", "a-b", "é", "z", "\u{1F600}", "0"] {
        put(&store, "logs", key, b"");
    }
    let listing = store.list_objects("logs", &list("", "", None, 1000)).unwrap();
    assert_eq!(keys(&listing), ["0", "B", "a", "a-b", "a/b", "b", "z", "é", "\u{1F600}"]);
    let after = store.list_objects("logs", &list("", "a-b", None, 2)).unwrap();
    assert_eq!(keys(&after), ["a/b", "b"]);
    assert!(after.is_truncated);
    assert_eq!(after.next_marker.as_deref(), Some("b"));
    let prefixed = store.list_objects("logs", &list("a", "", None, 1000)).unwrap();
    assert_eq!(keys(&prefixed), ["a", "a-b", "a/b"]);
    assert!(!prefixed.is_truncated);
    let none = store.list_objects("logs", &list("", "", None, 0)).unwrap();
    assert_eq!(none, Listing::default());
}

#[test]
fn delimiters_roll_keys_up_into_common_prefixes() {
    let (_dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    for key in [
        "AWSLogs/1/CloudTrail/us-east-1/2026/01/01/a.json.gz",
        "AWSLogs/1/CloudTrail/us-east-1/2026/01/02/b.json.gz",
        "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/01/01/d.json.gz",
        "AWSLogs/2/CloudTrail/eu-west-1/2026/01/01/c.json.gz",
        "AWSLogs/top.txt",
        "readme",
    ] {
        put(&store, "logs", key, b"x");
    }
    let root = store.list_objects("logs", &list("", "", Some("/"), 1000)).unwrap();
    assert_eq!(root.common_prefixes, ["AWSLogs/"]);
    assert_eq!(keys(&root), ["readme"]);

    let accounts = store.list_objects("logs", &list("AWSLogs/", "", Some("/"), 1000)).unwrap();
    assert_eq!(accounts.common_prefixes, ["AWSLogs/1/", "AWSLogs/2/"]);
    assert_eq!(keys(&accounts), ["AWSLogs/top.txt"]);

    // Paging one entry at a time: a common prefix counts once and is not repeated when the
    // next page starts after it.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.list_objects("logs", &list("AWSLogs/", &after, Some("/"), 1)).unwrap();
        seen.extend(page.common_prefixes.iter().cloned());
        seen.extend(page.objects.iter().map(|(key, _)| key.clone()));
        if !page.is_truncated {
            break;
        }
        after = page.next_marker.unwrap();
    }
    assert_eq!(seen, ["AWSLogs/1/", "AWSLogs/2/", "AWSLogs/top.txt"]);

    let services = store.list_objects("logs", &list("AWSLogs/1/CloudTrail", "", Some("/"), 1000)).unwrap();
    assert_eq!(services.common_prefixes, ["AWSLogs/1/CloudTrail-Digest/", "AWSLogs/1/CloudTrail/"]);
    let multi = store.list_objects("logs", &list("", "", Some("Trail"), 1000)).unwrap();
    assert_eq!(multi.common_prefixes, ["AWSLogs/1/CloudTrail", "AWSLogs/2/CloudTrail"]);
}

#[test]
fn write_once_objects_are_created_once_and_locked_until_their_time() {
    let (_dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    let until = now_ms() + 3_600_000;
    let metadata = ObjectMetadata::default();
    let first = store.put_object("logs", "trail.json.gz", b"first", &metadata, Some(until)).unwrap();
    let PutOutcome::Written(info) = first else { panic!("{first:?}") };
    assert_eq!(info.lock_until_ms, Some(until));

    // A re-run of the same delivery is told the object exists, and nothing changes.
    let again = store.put_object("logs", "trail.json.gz", b"second", &metadata, Some(until)).unwrap();
    assert_eq!(again, PutOutcome::AlreadyExists(info));
    assert_eq!(store.get_object("logs", "trail.json.gz").unwrap().body, b"first");

    // No plain put or delete gets past the lock.
    let overwrite = store.put_object("logs", "trail.json.gz", b"evil", &metadata, None).unwrap_err();
    assert_eq!((overwrite.code(), overwrite.status().as_u16()), ("AccessDenied", 403));
    let delete = store.delete_object("logs", "trail.json.gz").unwrap_err();
    assert_eq!(delete.code(), "AccessDenied");
    assert_eq!(store.get_object("logs", "trail.json.gz").unwrap().body, b"first");
    assert_eq!(store.delete_bucket("logs").unwrap_err().code(), "BucketNotEmpty");

    // Once the lock has expired the object is an ordinary one.
    store.put_object("logs", "old.json.gz", b"old", &metadata, Some(now_ms() - 1)).unwrap();
    store.put_object("logs", "old.json.gz", b"replaced", &metadata, None).unwrap();
    assert_eq!(store.get_object("logs", "old.json.gz").unwrap().body, b"replaced");
    store.delete_object("logs", "old.json.gz").unwrap();
    assert_eq!(store.get_object("logs", "old.json.gz").unwrap_err().code(), "NoSuchKey");
}

#[test]
fn the_lock_survives_a_reopen() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    store.put_object("logs", "k", b"body", &ObjectMetadata::default(), Some(now_ms() + 60_000)).unwrap();
    drop(store);
    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    assert_eq!(store.delete_object("logs", "k").unwrap_err().code(), "AccessDenied");
}

#[test]
fn overwrites_replace_and_deletes_remove() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    put(&store, "logs", "k", b"one");
    put(&store, "logs", "k", b"two, longer");
    assert_eq!(store.get_object("logs", "k").unwrap().body, b"two, longer");
    let listing = store.list_objects("logs", &list("", "", None, 10)).unwrap();
    assert_eq!(listing.objects.len(), 1);
    assert_eq!(listing.objects[0].1.size, 11);
    store.delete_object("logs", "k").unwrap();
    store.delete_object("logs", "k").unwrap();
    assert_eq!(store.head_object("logs", "k").unwrap_err().code(), "NoSuchKey");
    drop(store);
    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    assert!(store.list_objects("logs", &list("", "", None, 10)).unwrap().objects.is_empty());
}

#[test]
fn buckets_are_created_once_named_by_the_rules_and_deleted_when_empty() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    assert_eq!(store.create_bucket("logs", OWNER, "us-east-1").unwrap_err().code(), "BucketAlreadyOwnedByYou");
    assert_eq!(store.create_bucket("logs", "222222222222", "us-east-1").unwrap_err().code(), "BucketAlreadyExists");
    for bad in
        ["ab", "UPPER", "under_score", "-dash", "dash-", "a..b", "192.168.1.1", "xn--abc", "x-s3alias", &"a".repeat(64)]
    {
        let error = store.create_bucket(bad, OWNER, "us-east-1").unwrap_err();
        assert_eq!(error.code(), "InvalidBucketName", "{bad}");
    }
    assert!(is_valid_bucket_name("my.logs-2026") && is_valid_bucket_name(&"a".repeat(63)));
    store.create_bucket("other", "222222222222", "us-west-2").unwrap();
    assert_eq!(store.list_buckets(OWNER).iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["logs"]);

    put(&store, "logs", "k", b"x");
    assert_eq!(store.delete_bucket("logs").unwrap_err().code(), "BucketNotEmpty");
    store.delete_object("logs", "k").unwrap();
    store.delete_bucket("logs").unwrap();
    assert!(store.bucket("logs").is_none());
    assert_eq!(store.delete_bucket("logs").unwrap_err().code(), "NoSuchBucket");
    assert_eq!(
        store.put_object("logs", "k", b"", &ObjectMetadata::default(), None).unwrap_err().code(),
        "NoSuchBucket"
    );
    assert!(!dir.path().join("buckets/logs").exists());
    drop(store);
    let store = BucketStore::open(&dir.path().join("buckets")).unwrap();
    assert!(store.bucket("logs").is_none() && store.bucket("other").is_some());
}

#[test]
fn successors_bound_every_string_with_the_prefix() {
    assert_eq!(successor("a/").as_deref(), Some("a0"));
    assert_eq!(successor("ab").as_deref(), Some("ac"));
    assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(successor("\u{10FFFF}"), None);
    assert_eq!(successor(""), None);
}

#[test]
fn a_store_opened_read_only_changes_nothing() {
    let (dir, store) = store();
    store.create_bucket("logs", OWNER, "us-east-1").unwrap();
    put(&store, "logs", "kept", b"whole");
    drop(store);

    let reader = BucketStore::open_read_only(&dir.path().join("buckets")).unwrap();
    assert_eq!(
        reader.put_object("logs", "new", b"x", &ObjectMetadata::default(), None).unwrap_err().code(),
        "InternalError"
    );
    assert_eq!(reader.delete_object("logs", "kept").unwrap_err().code(), "InternalError");
    assert_eq!(reader.create_bucket("other", OWNER, "us-east-1").unwrap_err().code(), "InternalError");
    assert_eq!(reader.delete_bucket("logs").unwrap_err().code(), "InternalError");
    assert_eq!(reader.get_object("logs", "kept").unwrap().body, b"whole");

    let missing = dir.path().join("nothing-here");
    let empty = BucketStore::open_read_only(&missing).unwrap();
    assert!(empty.bucket("logs").is_none());
    assert!(!missing.exists(), "reading creates no folder");
}
