//! `EventView` and selections against real CloudTrail records: the Stratus Red Team captures
//! and the mixed public corpus in `/work/shared/data`. The files are required; a missing file
//! fails the test rather than skipping it.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::lookup::Category;
use crate::record::{RecordDefaults, parse_record};

const STRATUS: &str = "stratus-red-team-detonations.ndjson";
const CORPUS: &str = "corpus/corpus.ndjson";

fn lines(file: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect()
}

fn all_records() -> Vec<String> {
    let mut records = lines(STRATUS);
    records.extend(lines(CORPUS));
    records
}

fn text_of<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |value, key| value.get(key))?.as_str()
}

fn bool_of(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The category CloudTrail gives a record, read with a general JSON parser: the record's
/// `eventCategory`, else the pre-1.07 signals.
fn expected_category(record: &Value) -> Category {
    match text_of(record, &["eventCategory"]) {
        Some("Management") => Category::Management,
        Some("Data") => Category::Data,
        Some("Insight") => Category::Insight,
        Some("NetworkActivity") => Category::NetworkActivity,
        Some(_) => Category::Other,
        None => match text_of(record, &["eventType"]) {
            Some("AwsCloudTrailInsight") => Category::Insight,
            Some("AwsVpceEvent") => Category::NetworkActivity,
            _ if bool_of(record.get("managementEvent")) == Some(false) => Category::Data,
            _ => Category::Management,
        },
    }
}

#[test]
fn every_real_record_parses_with_the_fields_a_json_parser_sees() {
    let records = all_records();
    assert_eq!(records.len(), 309 + 917);
    for line in &records {
        let record: Value = serde_json::from_str(line).unwrap();
        let view = EventView::parse(line.as_bytes()).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(view.category(), expected_category(&record), "{line}");
        assert_eq!(view.event_source(), text_of(&record, &["eventSource"]), "{line}");
        assert_eq!(view.event_name(), text_of(&record, &["eventName"]), "{line}");
        assert_eq!(view.event_type(), text_of(&record, &["eventType"]), "{line}");
        assert_eq!(view.error_code(), text_of(&record, &["errorCode"]), "{line}");
        assert_eq!(view.vpc_endpoint_id(), text_of(&record, &["vpcEndpointId"]), "{line}");
        assert_eq!(view.aws_region(), text_of(&record, &["awsRegion"]), "{line}");
        assert_eq!(view.user_identity_arn(), text_of(&record, &["userIdentity", "arn"]), "{line}");
        assert_eq!(view.read_only(), bool_of(record.get("readOnly")), "{line}");
        assert_eq!(
            view.session_credential_from_console(),
            bool_of(record.get("sessionCredentialFromConsole")).unwrap_or(false),
            "{line}"
        );
        let expected_resources: Vec<(Option<&str>, Option<&str>)> = record
            .get("resources")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter(|item| item.is_object())
                    .map(|item| {
                        (text_of(item, &["type"]), text_of(item, &["ARN"]).or_else(|| text_of(item, &["ARNPrefix"])))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let resources: Vec<(Option<&str>, Option<&str>)> = view
            .resources()
            .iter()
            .map(|resource| (resource.resource_type.as_deref(), resource.arn.as_deref()))
            .collect();
        assert_eq!(resources, expected_resources, "{line}");
    }
}

#[test]
fn categories_agree_with_the_ingest_parser_and_cover_every_kind() {
    let mut seen = Vec::new();
    for line in all_records() {
        let view = EventView::parse(line.as_bytes()).unwrap();
        seen.push(view.category());
        let mut ids = || "00000000-0000-4000-8000-000000000001".to_owned();
        let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
        // Records that ingest refuses (no eventTime, odd account IDs) never reach a trail.
        if let Ok(parsed) = parse_record(line.as_bytes(), defaults, &mut ids) {
            assert_eq!(view.category(), parsed.category, "{line}");
            // The stored text (an eventID may have been inserted) reads the same.
            assert_eq!(EventView::parse(&parsed.json).unwrap().category(), parsed.category);
        }
    }
    for category in [Category::Management, Category::Data, Category::Insight, Category::NetworkActivity] {
        assert!(seen.contains(&category), "the corpus has no {category:?} event");
    }
    let stratus = lines(STRATUS);
    assert!(stratus.iter().all(|line| EventView::parse(line.as_bytes()).unwrap().category() == Category::Management));
}

/// Records of the corpus that a selection delivers, by line.
fn delivered(selection: &Selection) -> Vec<String> {
    all_records().into_iter().filter(|line| selection.matches(&EventView::parse(line.as_bytes()).unwrap())).collect()
}

#[test]
fn default_selection_delivers_exactly_the_management_records() {
    let delivered = delivered(&Selection::Default);
    let expected: Vec<String> = all_records()
        .into_iter()
        .filter(|line| expected_category(&serde_json::from_str(line).unwrap()) == Category::Management)
        .collect();
    assert_eq!(delivered, expected);
    assert!(delivered.len() > 1000);
}

#[test]
fn basic_s3_selector_delivers_the_real_bucket_events() {
    // The OTRF captures hold GetObject and ListObjects data events on this bucket; the
    // ListObjects records name their objects only by ARNPrefix.
    let bucket = "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a/";
    let selectors: Vec<EventSelector> = serde_json::from_value(json!([{"IncludeManagementEvents": false,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": [bucket]}]}]))
    .unwrap();
    let delivered = delivered(&Selection::for_trail(Some(selectors), None).unwrap());
    let names: Vec<String> = delivered
        .iter()
        .map(|line| text_of(&serde_json::from_str(line).unwrap(), &["eventName"]).unwrap().to_owned())
        .collect();
    assert!(names.iter().any(|name| name == "ListObjects"), "{names:?}");
    assert!(names.iter().any(|name| name == "GetObject"), "{names:?}");
    for line in &delivered {
        assert!(line.contains(bucket), "{line}");
    }
    // Every data event that names an object of the bucket is delivered.
    let expected = all_records()
        .into_iter()
        .filter(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            expected_category(&record) == Category::Data && line.contains(bucket)
        })
        .count();
    assert_eq!(delivered.len(), expected);
}

#[test]
fn advanced_selector_delivers_the_real_vpc_endpoint_denial() {
    let selectors: Vec<AdvancedEventSelector> = serde_json::from_value(json!([{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["NetworkActivity"]},
        {"Field": "eventSource", "Equals": ["s3.amazonaws.com"]},
        {"Field": "errorCode", "Equals": ["VpceAccessDenied"]}]}]))
    .unwrap();
    let delivered = delivered(&Selection::for_trail(None, Some(selectors)).unwrap());
    assert!(!delivered.is_empty());
    for line in &delivered {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(text_of(&record, &["eventCategory"]), Some("NetworkActivity"));
        assert_eq!(text_of(&record, &["errorCode"]), Some("VpceAccessDenied"));
    }
}

#[test]
fn global_service_events_in_the_corpus_are_iam_sts_and_the_like() {
    for line in all_records() {
        let record: Value = serde_json::from_str(&line).unwrap();
        let view = EventView::parse(line.as_bytes()).unwrap();
        if text_of(&record, &["eventSource"]) == Some("iam.amazonaws.com") {
            assert!(is_global_service_event(&view), "{line}");
        }
        if is_global_service_event(&view) {
            let source = text_of(&record, &["eventSource"]).unwrap();
            assert!(
                ["iam.amazonaws.com", "sts.amazonaws.com", "cloudfront.amazonaws.com", "route53.amazonaws.com"]
                    .contains(&source),
                "{line}"
            );
        }
    }
}
