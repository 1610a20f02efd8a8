//! Property tests of the selector module: laws that hold for every event and selector.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const SOURCES: [&str; 6] = [
    "s3.amazonaws.com",
    "kms.amazonaws.com",
    "rdsdata.amazonaws.com",
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "iam.amazonaws.com",
];
const NAMES: [&str; 6] = ["GetObject", "PutObject", "DeleteObject", "Invoke", "Decrypt", "RunInstances"];
const RESOURCE_TYPES: [&str; 5] =
    ["AWS::S3::Object", "AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::EC2::Snapshot"];
const ARNS: [&str; 7] = [
    "arn:aws:s3:::logs/AWSLogs/1.json.gz",
    "arn:aws:s3:::logs",
    "arn:aws:s3:::data/photos/cat.jpg",
    "arn:aws:s3:::data/",
    "arn:aws:lambda:us-east-1:111122223333:function:hello",
    "arn:aws:dynamodb:us-east-1:111122223333:table/Orders",
    "arn:aws:ec2:us-east-1::snapshot/snap-1",
];
const IDENTITIES: [&str; 2] =
    ["arn:aws:iam::111122223333:user/alice", "arn:aws:sts::111122223333:assumed-role/scanner/s"];

/// A record with every field selectors read drawn from small pools, so that conditions
/// drawn from the same pools hit often.
fn record() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![None, Some("Management"), Some("Data"), Some("NetworkActivity"), Some("Insight")]),
        prop::sample::select(vec![None, Some(json!(true)), Some(json!(false)), Some(json!("true"))]),
        prop::option::of(prop::sample::select(SOURCES.to_vec())),
        prop::option::of(prop::sample::select(NAMES.to_vec())),
        prop::option::of(prop::sample::select(vec!["VpceAccessDenied", "AccessDenied"])),
        prop::option::of(prop::sample::select(IDENTITIES.to_vec())),
        any::<bool>(),
        prop::collection::vec(
            (prop::sample::select(RESOURCE_TYPES.to_vec()), prop::sample::select(ARNS.to_vec())),
            0..4,
        ),
    )
        .prop_map(|(category, read_only, source, name, error, identity, management_event, resources)| {
            let mut record =
                json!({"eventVersion": "1.09", "eventType": "AwsApiCall", "managementEvent": management_event});
            let object = record.as_object_mut().unwrap();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            };
            put("eventCategory", category.map(Value::from));
            put("readOnly", read_only);
            put("eventSource", source.map(Value::from));
            put("eventName", name.map(Value::from));
            put("errorCode", error.map(Value::from));
            put("userIdentity", identity.map(|arn| json!({"type": "IAMUser", "arn": arn})));
            let resources: Vec<Value> =
                resources.into_iter().map(|(kind, arn)| json!({"type": kind, "ARN": arn})).collect();
            put("resources", Some(Value::from(resources)));
            record
        })
}

fn field_selector() -> impl Strategy<Value = AdvancedFieldSelector> {
    let field = prop::sample::select(vec![
        "eventCategory",
        "readOnly",
        "eventSource",
        "eventName",
        "errorCode",
        "userIdentity.arn",
        "resources.type",
        "resources.ARN",
    ]);
    let mut pool: Vec<&'static str> =
        vec!["Management", "Data", "NetworkActivity", "true", "false", "VpceAccessDenied"];
    pool.extend(SOURCES);
    pool.extend(NAMES);
    pool.extend(RESOURCE_TYPES);
    pool.extend(ARNS);
    pool.extend(IDENTITIES);
    pool.extend(["arn:aws:s3:::", "arn:aws:s3:::data/", ".jpg", "Object", "arn:aws:sts::"]);
    let values = prop::option::of(prop::collection::vec(prop::sample::select(pool).prop_map(str::to_owned), 1..3));
    (field, values.clone(), values.clone(), values.clone(), values.clone(), values.clone(), values).prop_map(
        |(field, equals, starts_with, ends_with, not_equals, not_starts_with, not_ends_with)| AdvancedFieldSelector {
            field: field.to_owned(),
            equals,
            starts_with,
            ends_with,
            not_equals,
            not_starts_with,
            not_ends_with,
        },
    )
}

fn advanced_selector() -> impl Strategy<Value = AdvancedEventSelector> {
    prop::collection::vec(field_selector(), 1..4)
        .prop_map(|field_selectors| AdvancedEventSelector { name: None, field_selectors })
}

fn basic_selector() -> impl Strategy<Value = EventSelector> {
    let data_resource = (
        prop::sample::select(vec!["AWS::S3::Object", "AWS::Lambda::Function", "AWS::DynamoDB::Table"]),
        prop::collection::vec(
            prop::sample::select(vec![
                "arn:aws:s3",
                "arn:aws:s3:::data/",
                "arn:aws:s3:::logs/AWS",
                "arn:aws:lambda",
                "arn:aws:lambda:us-east-1:111122223333:function:hello",
                "arn:aws:dynamodb",
            ]),
            0..3,
        ),
    )
        .prop_map(|(kind, values)| DataResource {
            r#type: Some(kind.to_owned()),
            values: Some(values.into_iter().map(str::to_owned).collect()),
        });
    (
        prop::option::of(prop::sample::select(vec![
            ReadWriteType::ReadOnly,
            ReadWriteType::WriteOnly,
            ReadWriteType::All,
        ])),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(data_resource, 0..3)),
        prop::option::of(prop::sample::subsequence(vec!["kms.amazonaws.com", "rdsdata.amazonaws.com"], 0..=2)),
    )
        .prop_map(|(read_write_type, include_management_events, data_resources, excluded)| EventSelector {
            read_write_type,
            include_management_events,
            data_resources,
            exclude_management_event_sources: excluded.map(|list| list.into_iter().map(str::to_owned).collect()),
        })
}

fn matches(selection: &Selection, record: &Value) -> bool {
    let text = serde_json::to_vec(record).unwrap();
    selection.matches(&EventView::parse(&text).unwrap())
}

fn event_name(record: &Value) -> Option<&str> {
    record.get("eventName").and_then(Value::as_str)
}

proptest! {
    #[test]
    fn advanced_selectors_are_ored(selectors in prop::collection::vec(advanced_selector(), 0..4), record in record()) {
        let each = selectors.iter().any(|selector| matches(&Selection::Advanced(vec![selector.clone()]), &record));
        prop_assert_eq!(matches(&Selection::Advanced(selectors), &record), each);
    }

    #[test]
    fn basic_selectors_are_ored(selectors in prop::collection::vec(basic_selector(), 0..4), record in record()) {
        let each = selectors.iter().any(|selector| matches(&Selection::Basic(vec![selector.clone()]), &record));
        prop_assert_eq!(matches(&Selection::Basic(selectors), &record), each);
    }

    #[test]
    fn adding_a_selector_never_drops_an_event(
        selectors in prop::collection::vec(advanced_selector(), 1..4),
        extra in advanced_selector(),
        basic_selectors in prop::collection::vec(basic_selector(), 1..4),
        basic_extra in basic_selector(),
        record in record(),
    ) {
        if matches(&Selection::Advanced(selectors.clone()), &record) {
            let mut more = selectors;
            more.push(extra);
            prop_assert!(matches(&Selection::Advanced(more), &record));
        }
        if matches(&Selection::Basic(basic_selectors.clone()), &record) {
            let mut more = basic_selectors;
            more.push(basic_extra);
            prop_assert!(matches(&Selection::Basic(more), &record));
        }
    }

    #[test]
    fn not_equals_excludes_exactly_that_value(
        selector in advanced_selector(),
        excluded in prop::sample::select(NAMES.to_vec()),
        record in record(),
    ) {
        let mut narrowed = selector.clone();
        narrowed.field_selectors.push(AdvancedFieldSelector {
            field: "eventName".to_owned(),
            not_equals: Some(vec![excluded.to_owned()]),
            ..AdvancedFieldSelector::default()
        });
        let before = matches(&Selection::Advanced(vec![selector]), &record);
        let after = matches(&Selection::Advanced(vec![narrowed]), &record);
        prop_assert_eq!(after, before && event_name(&record) != Some(excluded));
    }

    #[test]
    fn default_equals_one_basic_selector_for_all_management_events(record in record()) {
        let explicit = Selection::for_trail(Some(vec![EventSelector {
            read_write_type: Some(ReadWriteType::All),
            include_management_events: Some(true),
            data_resources: None,
            exclude_management_event_sources: None,
        }]), None).unwrap();
        let empty = Selection::for_trail(Some(vec![EventSelector::default()]), None).unwrap();
        let expected = matches(&Selection::Default, &record);
        prop_assert_eq!(matches(&explicit, &record), expected);
        prop_assert_eq!(matches(&empty, &record), expected);
    }

    #[test]
    fn basic_and_advanced_agree_on_equivalent_selections(record in record(), read in any::<bool>()) {
        // Management events of one kind.
        let basic = Selection::for_trail(Some(vec![EventSelector {
            read_write_type: Some(if read { ReadWriteType::ReadOnly } else { ReadWriteType::WriteOnly }),
            ..EventSelector::default()
        }]), None).unwrap();
        let advanced: Vec<AdvancedEventSelector> = serde_json::from_value(json!([{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": [read.to_string()]}]}])).unwrap();
        let advanced = Selection::for_trail(None, Some(advanced)).unwrap();
        prop_assert_eq!(matches(&basic, &record), matches(&advanced, &record));

        // S3 data events under one bucket, no management events.
        let basic: Vec<EventSelector> = serde_json::from_value(json!([{"IncludeManagementEvents": false,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::data/"]}]}])).unwrap();
        let advanced: Vec<AdvancedEventSelector> = serde_json::from_value(json!([{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::data/"]}]}])).unwrap();
        let basic = Selection::for_trail(Some(basic), None).unwrap();
        let advanced = Selection::for_trail(None, Some(advanced)).unwrap();
        prop_assert_eq!(matches(&basic, &record), matches(&advanced, &record));
    }

    #[test]
    fn basic_s3_values_are_prefixes_of_object_arns(
        bucket in "[a-z0-9][a-z0-9.-]{2,20}",
        other_bucket in "[a-z0-9][a-z0-9.-]{2,20}",
        prefix in "[a-zA-Z0-9/._-]{0,12}",
        key in "[a-zA-Z0-9/._ -]{1,20}",
        same_bucket in any::<bool>(),
        read_only in any::<bool>(),
    ) {
        let value = format!("arn:aws:s3:::{bucket}/{prefix}");
        let object_arn = format!("arn:aws:s3:::{}/{key}", if same_bucket { &bucket } else { &other_bucket });
        let selection = Selection::for_trail(Some(vec![EventSelector {
            data_resources: Some(vec![DataResource {
                r#type: Some("AWS::S3::Object".to_owned()),
                values: Some(vec![value.clone()]),
            }]),
            ..EventSelector::default()
        }]), None).unwrap();
        let record = json!({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "readOnly": read_only,
            "eventCategory": "Data", "resources": [{"type": "AWS::S3::Object", "ARN": object_arn}]});
        prop_assert_eq!(matches(&selection, &record), object_arn.starts_with(&value));
    }

    #[test]
    fn validation_never_panics_and_answers_with_aws_codes(
        basic_json in prop::option::of(prop::collection::vec(any_selector_json(false), 0..7)),
        advanced_json in prop::option::of(prop::collection::vec(any_selector_json(true), 0..4)),
        record in record(),
    ) {
        let basic = basic_json.map(|list| serde_json::from_value::<Vec<EventSelector>>(Value::from(list)).unwrap());
        let advanced =
            advanced_json.map(|list| serde_json::from_value::<Vec<AdvancedEventSelector>>(Value::from(list)).unwrap());
        match Selection::for_trail(basic, advanced) {
            Ok(selection) => {
                // A validated selection survives storage and matches without panicking.
                let stored: Selection = serde_json::from_str(&serde_json::to_string(&selection).unwrap()).unwrap();
                prop_assert_eq!(&stored, &selection);
                let _ = matches(&selection, &record);
            }
            Err(error) => {
                prop_assert!(error.code == INVALID_EVENT_SELECTORS || error.code == INVALID_PARAMETER_COMBINATION);
                prop_assert!(!error.message.is_empty());
            }
        }
    }

    #[test]
    fn event_view_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = EventView::parse(&bytes);
    }

    #[test]
    fn event_view_never_panics_on_arbitrary_json(value in arbitrary_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        if let Ok(view) = EventView::parse(&text) {
            let _ = Selection::Default.matches(&view);
            let _ = is_global_service_event(&view);
        }
    }
}

/// A selector as a client might send it: members drawn from valid and invalid values alike.
fn any_selector_json(advanced: bool) -> BoxedStrategy<Value> {
    let text = prop::sample::select(vec![
        "",
        "*",
        "All",
        "read-only",
        "ReadOnly",
        "Management",
        "Data",
        "NetworkActivity",
        "Insight",
        "eventCategory",
        "readOnly",
        "eventSource",
        "eventName",
        "resources.type",
        "resources.ARN",
        "errorCode",
        "vpcEndpointId",
        "userIdentity.arn",
        "sessionCredentialFromConsole",
        "true",
        "false",
        "AWS::S3::Object",
        "AWS::Lambda::Function",
        "AWS::Bad",
        "kms.amazonaws.com",
        "s3.amazonaws.com",
        "VpceAccessDenied",
        "arn:aws:s3",
        "arn:aws:s3:::bucket/",
        "arn:aws:s3:::*/*",
        "arn:aws:lambda",
        "arn:aws:lambda:us-east-1:111122223333:function:f",
        "ünïcødé",
    ])
    .prop_map(Value::from);
    let list = prop::option::of(prop::collection::vec(text.clone(), 0..3).prop_map(Value::from));
    if advanced {
        let field_selector = (text.clone(), list.clone(), list.clone(), list.clone(), list.clone()).prop_map(
            |(field, equals, starts_with, not_equals, not_ends_with)| {
                let mut object = json!({"Field": field});
                for (key, value) in [
                    ("Equals", equals),
                    ("StartsWith", starts_with),
                    ("NotEquals", not_equals),
                    ("NotEndsWith", not_ends_with),
                ] {
                    if let Some(value) = value {
                        object[key] = value;
                    }
                }
                object
            },
        );
        (prop::option::of(text), prop::collection::vec(field_selector, 0..4))
            .prop_map(|(name, field_selectors)| json!({"Name": name, "FieldSelectors": field_selectors}))
            .boxed()
    } else {
        let data_resource = (prop::option::of(text.clone()), list.clone())
            .prop_map(|(kind, values)| json!({"Type": kind, "Values": values}));
        (
            prop::option::of(text.clone()),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::collection::vec(data_resource, 0..3)),
            list,
        )
            .prop_map(|(read_write_type, include, resources, excluded)| {
                json!({"ReadWriteType": read_write_type, "IncludeManagementEvents": include,
                       "DataResources": resources, "ExcludeManagementEventSources": excluded})
            })
            .boxed()
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z:/._\"\\\\ -]{0,12}".prop_map(Value::from),
    ];
    let keys = prop::sample::select(vec![
        "eventCategory",
        "eventType",
        "managementEvent",
        "readOnly",
        "eventSource",
        "eventName",
        "errorCode",
        "vpcEndpointId",
        "awsRegion",
        "sessionCredentialFromConsole",
        "userIdentity",
        "arn",
        "tlsDetails",
        "clientProvidedHostHeader",
        "resources",
        "type",
        "ARN",
        "ARNPrefix",
        "other",
    ]);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
