//! Unit tests: one per rule and per error message of the selector module.

use serde_json::{Value, json};

use super::*;
use crate::lookup::Category;

fn basic(json: Value) -> Result<Selection, SelectorError> {
    let selectors: Vec<EventSelector> = serde_json::from_value(json).unwrap();
    Selection::for_trail(Some(selectors), None)
}

fn advanced(json: Value) -> Result<Selection, SelectorError> {
    let selectors: Vec<AdvancedEventSelector> = serde_json::from_value(json).unwrap();
    Selection::for_trail(None, Some(selectors))
}

fn invalid_message(result: Result<Selection, SelectorError>) -> String {
    let error = result.unwrap_err();
    assert_eq!(error.code, INVALID_EVENT_SELECTORS, "{error}");
    error.message
}

/// Matches a record given as JSON against a selection.
fn delivers(selection: &Selection, record: &Value) -> bool {
    let text = serde_json::to_vec(record).unwrap();
    selection.matches(&EventView::parse(&text).unwrap())
}

fn management(source: &str, name: &str, read_only: bool) -> Value {
    json!({"eventVersion": "1.09", "eventSource": source, "eventName": name, "readOnly": read_only,
           "eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management"})
}

fn s3_object_event(name: &str, object_arn: &str, read_only: bool) -> Value {
    let bucket_arn = object_arn.split_once('/').map_or(object_arn, |(bucket, _)| bucket);
    json!({"eventSource": "s3.amazonaws.com", "eventName": name, "readOnly": read_only, "managementEvent": false,
           "eventCategory": "Data", "resources": [
               {"type": "AWS::S3::Object", "ARN": object_arn},
               {"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": bucket_arn}]})
}

fn data_event(source: &str, name: &str, resource_type: &str, arn: &str) -> Value {
    json!({"eventSource": source, "eventName": name, "readOnly": false, "managementEvent": false,
           "eventCategory": "Data", "resources": [{"type": resource_type, "ARN": arn}]})
}

fn network_event(source: &str, name: &str, error_code: Option<&str>) -> Value {
    let mut record = json!({"eventSource": source, "eventName": name, "eventType": "AwsVpceEvent",
                            "eventCategory": "NetworkActivity", "vpcEndpointId": "vpce-EXAMPLE08c1b6b9b7"});
    if let Some(code) = error_code {
        record["errorCode"] = json!(code);
    }
    record
}

fn insight_event() -> Value {
    json!({"eventType": "AwsCloudTrailInsight", "eventCategory": "Insight",
           "insightDetails": {"state": "Start", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser"}})
}

// ---- PutEventSelectors: which kind ----

#[test]
fn refuses_both_kinds_of_selectors() {
    let error =
        Selection::for_trail(Some(vec![EventSelector::default()]), Some(vec![AdvancedEventSelector::default()]))
            .unwrap_err();
    assert_eq!(error.code, INVALID_PARAMETER_COMBINATION);
    assert_eq!(error.message, "You can use either EventSelectors or AdvancedEventSelectors, but not both.");
}

#[test]
fn refuses_neither_kind_of_selectors() {
    let message = invalid_message(Selection::for_trail(None, None));
    assert_eq!(message, "Specify either EventSelectors or AdvancedEventSelectors.");
}

#[test]
fn an_empty_list_next_to_the_other_kind_counts_as_absent() {
    let advanced_selectors: Vec<AdvancedEventSelector> =
        serde_json::from_value(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]))
            .unwrap();
    let selection = Selection::for_trail(Some(vec![]), Some(advanced_selectors.clone())).unwrap();
    assert_eq!(selection, Selection::Advanced(advanced_selectors));
    let selection = Selection::for_trail(Some(vec![EventSelector::default()]), Some(vec![])).unwrap();
    assert!(matches!(selection, Selection::Basic(_)));
}

// ---- Basic selectors: validation ----

#[test]
fn basic_selectors_number_one_to_five() {
    let expected = "Specify a valid number of EventSelectors (1 to 5) for your trail";
    assert_eq!(invalid_message(basic(json!([]))), expected);
    assert_eq!(invalid_message(basic(json!([{}, {}, {}, {}, {}, {}]))), expected);
    assert!(basic(json!([{}, {}, {}, {}, {}])).is_ok());
}

#[test]
fn basic_selectors_get_aws_defaults() {
    let selection =
        basic(json!([{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket-1/"]}]}])).unwrap();
    let stored = selection.event_selectors().unwrap();
    assert_eq!(
        serde_json::to_value(&stored).unwrap(),
        json!([{"ReadWriteType": "All", "IncludeManagementEvents": true,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket-1/"]}],
                "ExcludeManagementEventSources": []}])
    );
    assert!(selection.has_custom());
    assert_eq!(selection.advanced_event_selectors(), None);
}

#[test]
fn refuses_an_unknown_read_write_type() {
    let message = invalid_message(basic(json!([{"ReadWriteType": "read-only"}])));
    assert_eq!(message, "Value read-only for ReadWriteType is invalid. Valid values are: ReadOnly, WriteOnly, All");
}

#[test]
fn refuses_data_resource_types_outside_the_basic_three() {
    let message = invalid_message(basic(json!([{"DataResources": [{"Type": "AWS::S3::Bucket", "Values": []}]}])));
    assert_eq!(
        message,
        "Value AWS::S3::Bucket for DataResources.Type is invalid. Valid values are: AWS::DynamoDB::Table, \
         AWS::Lambda::Function, AWS::S3::Object"
    );
    let message = invalid_message(basic(json!([{"DataResources": [{"Values": ["arn:aws:s3"]}]}])));
    assert!(message.starts_with("Value null for DataResources.Type is invalid."), "{message}");
}

#[test]
fn refuses_malformed_data_resource_values() {
    for value in ["arn:aws:s3:::*/*", "arn:aws:s3:::*", "arn:aws:lambda:*", "arn:aws:s3:::bucket", "bucket/"] {
        let resource_type = if value.contains("lambda") { "AWS::Lambda::Function" } else { "AWS::S3::Object" };
        let message = invalid_message(basic(json!([{"DataResources": [{"Type": resource_type, "Values": [value]}]}])));
        assert_eq!(message, format!("Value {value} for DataResources.Values is invalid."));
    }
}

#[test]
fn at_most_250_specific_data_resource_values_per_trail() {
    let values = |count: usize, prefix: &str| (0..count).map(|i| format!("{prefix}{i:03}/")).collect::<Vec<_>>();
    let selector = |values: Vec<String>| json!({"DataResources": [{"Type": "AWS::S3::Object", "Values": values}]});
    let expected = "Specify a valid number of DataResources.Values (0 to 250) for all your selectors";
    // The limit is per trail, across selectors.
    let message = invalid_message(basic(json!([
        selector(values(200, "arn:aws:s3:::a")),
        selector(values(51, "arn:aws:s3:::b"))
    ])));
    assert_eq!(message, expected);
    assert!(basic(json!([selector(values(200, "arn:aws:s3:::a")), selector(values(50, "arn:aws:s3:::b"))])).is_ok());
    // Values that select all resources of a type are outside the limit.
    let mut many = values(250, "arn:aws:s3:::a");
    many.push("arn:aws:s3".to_owned());
    assert!(basic(json!([selector(many)])).is_ok());
    // An empty value list is allowed ("0 to 250").
    assert!(basic(json!([selector(vec![])])).is_ok());
}

#[test]
fn only_kms_and_rds_data_can_be_excluded() {
    assert!(basic(json!([{"ExcludeManagementEventSources": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}])).is_ok());
    let message = invalid_message(basic(json!([{"ExcludeManagementEventSources": ["s3.amazonaws.com"]}])));
    assert_eq!(
        message,
        "Value s3.amazonaws.com for ExcludeManagementEventSources is invalid. Valid values are: kms.amazonaws.com, \
         rdsdata.amazonaws.com"
    );
}

// ---- Basic selectors: matching ----

#[test]
fn default_selection_delivers_management_events_only() {
    let selection = Selection::default();
    assert!(delivers(&selection, &management("ec2.amazonaws.com", "RunInstances", false)));
    assert!(delivers(&selection, &management("ec2.amazonaws.com", "DescribeInstances", true)));
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::b/k", true)));
    assert!(!delivers(&selection, &network_event("kms.amazonaws.com", "ListKeys", None)));
    assert!(!delivers(&selection, &insight_event()));
    assert!(!selection.has_custom());
    assert_eq!(
        serde_json::to_value(selection.event_selectors()).unwrap(),
        json!([{"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [],
                "ExcludeManagementEventSources": []}])
    );
}

#[test]
fn read_write_type_filters_management_and_data_events() {
    let s3 = json!({"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]});
    let read = basic(json!([{"ReadWriteType": "ReadOnly", "DataResources": [s3]}])).unwrap();
    let write = basic(json!([{"ReadWriteType": "WriteOnly", "DataResources": [s3]}])).unwrap();
    let describe = management("ec2.amazonaws.com", "DescribeInstances", true);
    let terminate = management("ec2.amazonaws.com", "TerminateInstances", false);
    let get = s3_object_event("GetObject", "arn:aws:s3:::b/k", true);
    let put = s3_object_event("PutObject", "arn:aws:s3:::b/k", false);
    assert!(delivers(&read, &describe) && delivers(&read, &get));
    assert!(!delivers(&read, &terminate) && !delivers(&read, &put));
    assert!(delivers(&write, &terminate) && delivers(&write, &put));
    assert!(!delivers(&write, &describe) && !delivers(&write, &get));
}

#[test]
fn a_record_without_read_only_counts_as_a_write() {
    let record =
        json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn"});
    assert!(delivers(&basic(json!([{"ReadWriteType": "WriteOnly"}])).unwrap(), &record));
    assert!(!delivers(&basic(json!([{"ReadWriteType": "ReadOnly"}])).unwrap(), &record));
}

#[test]
fn include_management_events_false_drops_them() {
    let selection = basic(json!([{"IncludeManagementEvents": false,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::"]}]}]))
    .unwrap();
    assert!(!delivers(&selection, &management("iam.amazonaws.com", "CreateUser", false)));
    assert!(delivers(&selection, &s3_object_event("PutObject", "arn:aws:s3:::b/k", false)));
    assert!(!selection.logs_management_events());
    assert!(!selection.logs_management_writes());
}

#[test]
fn excluded_sources_drop_only_their_management_events() {
    let selection = basic(json!([{"ExcludeManagementEventSources": ["kms.amazonaws.com"]}])).unwrap();
    assert!(!delivers(&selection, &management("kms.amazonaws.com", "Decrypt", true)));
    assert!(delivers(&selection, &management("rdsdata.amazonaws.com", "ExecuteStatement", false)));
    assert!(delivers(&selection, &management("ec2.amazonaws.com", "RunInstances", false)));
}

#[test]
fn s3_values_are_arn_prefixes() {
    let selection = basic(json!([{"IncludeManagementEvents": false, "ReadWriteType": "WriteOnly",
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket-3/my-images"]}]}]))
    .unwrap();
    // The user guide's example: write events under the prefix only.
    assert!(delivers(
        &selection,
        &s3_object_event("DeleteObject", "arn:aws:s3:::bucket-3/my-images/example.jpg", false)
    ));
    assert!(!delivers(
        &selection,
        &s3_object_event("DeleteObject", "arn:aws:s3:::bucket-3/my-videos/example.avi", false)
    ));
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::bucket-3/my-images/example.jpg", true)));
    assert!(!delivers(&selection, &s3_object_event("PutObject", "arn:aws:s3:::bucket-1/my-images/x", false)));
}

#[test]
fn s3_bucket_level_data_events_match_by_arn_prefix() {
    // A real ListObjects record names its objects by ARNPrefix.
    let record = json!({"eventSource": "s3.amazonaws.com", "eventName": "ListObjects", "readOnly": true,
        "eventCategory": "Data", "managementEvent": false, "resources": [
            {"ARNPrefix": "arn:aws:s3:::logs-bucket/", "type": "AWS::S3::Object"},
            {"ARN": "arn:aws:s3:::logs-bucket", "accountId": "123456789123", "type": "AWS::S3::Bucket"}]});
    let whole_bucket =
        json!([{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::logs-bucket/"]}]}]);
    let other_bucket = json!([{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::other/"]}]}]);
    assert!(delivers(&basic(whole_bucket).unwrap(), &record));
    assert!(!delivers(&basic(other_bucket).unwrap(), &record));
}

#[test]
fn lambda_and_dynamodb_values() {
    let function = "arn:aws:lambda:us-west-2:111111111111:function:helloworld";
    let selection = basic(json!([{"DataResources": [
        {"Type": "AWS::Lambda::Function", "Values": [function]},
        {"Type": "AWS::DynamoDB::Table", "Values": ["arn:aws:dynamodb"]}]}]))
    .unwrap();
    let invoke = |arn: &str| data_event("lambda.amazonaws.com", "Invoke", "AWS::Lambda::Function", arn);
    assert!(delivers(&selection, &invoke(function)));
    assert!(!delivers(&selection, &invoke(&format!("{function}2"))));
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders";
    assert!(delivers(&selection, &data_event("dynamodb.amazonaws.com", "PutItem", "AWS::DynamoDB::Table", table)));
    // A Lambda value does not select an S3 object that happens to share the prefix rules.
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::b/k", true)));
}

#[test]
fn basic_selectors_never_pick_other_data_network_or_insight_events() {
    let selection = basic(json!([{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])).unwrap();
    let outposts = data_event("s3-outposts.amazonaws.com", "GetObject", "AWS::S3Outposts::Object", "arn:aws:s3:x");
    assert!(!delivers(&selection, &outposts));
    assert!(!delivers(&selection, &network_event("s3.amazonaws.com", "GetObject", None)));
    assert!(!delivers(&selection, &insight_event()));
}

#[test]
fn insights_preconditions_for_basic_selectors() {
    let read_only = basic(json!([{"ReadWriteType": "ReadOnly"}])).unwrap();
    assert!(read_only.logs_management_events() && !read_only.logs_management_writes());
    let mixed = basic(json!([{"ReadWriteType": "ReadOnly"}, {"ReadWriteType": "WriteOnly"}])).unwrap();
    assert!(mixed.logs_management_writes());
    assert!(Selection::Default.logs_management_writes() && Selection::Default.logs_management_events());
}

// ---- Advanced selectors: validation ----

fn category(value: &str) -> Value {
    json!({"Field": "eventCategory", "Equals": [value]})
}

#[test]
fn accepts_the_documented_examples() {
    let selection = advanced(json!([
        {"Name": "Log readOnly and writeOnly management events", "FieldSelectors": [category("Management")]},
        {"Name": "Log PutObject and DeleteObject events for two S3 prefixes", "FieldSelectors": [
            category("Data"),
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "eventName", "Equals": ["PutObject", "DeleteObject"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::mybucket/prefix", "arn:aws:s3:::mybucket2/prefix2"]}]},
        {"Name": "KMS VPC endpoint denials", "FieldSelectors": [
            category("NetworkActivity"),
            {"Field": "eventSource", "Equals": ["kms.amazonaws.com"]},
            {"Field": "errorCode", "Equals": ["VpceAccessDenied"]}]},
        {"FieldSelectors": [category("Management"),
            {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]},
            {"Field": "readOnly", "Equals": ["false"]}]}
    ]));
    let selection = selection.unwrap();
    assert!(selection.has_custom());
    assert_eq!(selection.event_selectors(), None);
    assert_eq!(selection.advanced_event_selectors().map(<[_]>::len), Some(4));
}

#[test]
fn advanced_selectors_need_at_least_one() {
    assert_eq!(invalid_message(advanced(json!([]))), "Specify at least one AdvancedEventSelector for your trail");
}

#[test]
fn every_selector_needs_one_event_category() {
    let message = invalid_message(advanced(json!([{"FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}])));
    assert_eq!(message, "Each AdvancedEventSelector must contain the eventCategory field with the Equals operator");
    let message =
        invalid_message(advanced(json!([{"FieldSelectors": [category("Management"), category("Management")]}])));
    assert_eq!(message, "You can have only one eventCategory field per selector");
    let message = invalid_message(advanced(json!([{"FieldSelectors": [category("Insight")]}])));
    assert_eq!(
        message,
        "Value Insight for field eventCategory is invalid. Valid values for trails are: Management, Data, NetworkActivity"
    );
    let message = invalid_message(advanced(json!([{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management", "Data"]}]}])));
    assert_eq!(message, "Field eventCategory must have exactly one value for the Equals operator");
    let message = invalid_message(advanced(json!([{"FieldSelectors": [
        {"Field": "eventCategory", "NotEquals": ["Data"]}]}])));
    assert_eq!(message, "Operator NotEquals is not valid for field eventCategory. Valid operators: Equals");
    let message = invalid_message(advanced(json!([{"Name": "x"}])));
    assert_eq!(message, "Each AdvancedEventSelector must contain at least one FieldSelector");
}

#[test]
fn refuses_unknown_and_malformed_fields() {
    for field in ["", "userName", "event Name", "eventname"] {
        let message = invalid_message(advanced(
            json!([{"FieldSelectors": [category("Management"), {"Field": field, "Equals": ["x"]}]}]),
        ));
        assert_eq!(message, format!("Value {field} for AdvancedFieldSelector.Field is invalid."));
    }
}

#[test]
fn fields_are_limited_per_category_for_trails() {
    let cases = [
        (
            "Management",
            json!({"Field": "eventName", "Equals": ["CreateUser"]}),
            "Field eventName is not supported for Management events on trails",
        ),
        (
            "Management",
            json!({"Field": "userIdentity.arn", "StartsWith": ["arn:"]}),
            "Field userIdentity.arn is not supported for Management events on trails",
        ),
        (
            "NetworkActivity",
            json!({"Field": "readOnly", "Equals": ["true"]}),
            "Field readOnly is not supported for NetworkActivity events on trails",
        ),
        (
            "Data",
            json!({"Field": "vpcEndpointId", "Equals": ["vpce-1"]}),
            "Field vpcEndpointId is not supported for Data events on trails",
        ),
        (
            "Data",
            json!({"Field": "errorCode", "Equals": ["VpceAccessDenied"]}),
            "Field errorCode is not supported for Data events on trails",
        ),
    ];
    for (event_category, extra, expected) in cases {
        let mut field_selectors = vec![category(event_category), extra];
        if event_category == "Data" {
            field_selectors.push(json!({"Field": "resources.type", "Equals": ["AWS::S3::Object"]}));
        }
        if event_category == "NetworkActivity" {
            field_selectors.push(json!({"Field": "eventSource", "Equals": ["kms.amazonaws.com"]}));
        }
        assert_eq!(invalid_message(advanced(json!([{"FieldSelectors": field_selectors}]))), expected);
    }
}

#[test]
fn operators_are_limited_per_field() {
    let data = |extra: Value| {
        advanced(
            json!([{"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}, extra]}]),
        )
    };
    assert_eq!(
        invalid_message(data(json!({"Field": "readOnly", "NotEquals": ["true"]}))),
        "Operator NotEquals is not valid for field readOnly. Valid operators: Equals"
    );
    assert_eq!(
        invalid_message(data(json!({"Field": "sessionCredentialFromConsole", "StartsWith": ["t"]}))),
        "Operator StartsWith is not valid for field sessionCredentialFromConsole. Valid operators: Equals, NotEquals"
    );
    assert!(data(json!({"Field": "sessionCredentialFromConsole", "NotEquals": ["true"]})).is_ok());
    for operator in ["Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith"] {
        assert!(data(json!({"Field": "eventName", operator: ["Get"]})).is_ok(), "{operator}");
        assert!(data(json!({"Field": "resources.ARN", operator: ["arn:aws:s3:::b/"]})).is_ok(), "{operator}");
        assert!(data(json!({"Field": "userIdentity.arn", operator: ["arn:aws:iam::1:user/x"]})).is_ok(), "{operator}");
        assert!(data(json!({"Field": "eventSource", operator: ["s3.amazonaws.com"]})).is_ok(), "{operator}");
        assert!(data(json!({"Field": "eventType", operator: ["AwsApiCall"]})).is_ok(), "{operator}");
    }
}

#[test]
fn management_event_source_only_excludes_kms_and_rds_data() {
    let management = |extra: Value| advanced(json!([{"FieldSelectors": [category("Management"), extra]}]));
    assert!(management(json!({"Field": "eventSource", "NotEquals": ["rdsdata.amazonaws.com"]})).is_ok());
    assert_eq!(
        invalid_message(management(json!({"Field": "eventSource", "Equals": ["kms.amazonaws.com"]}))),
        "Operator Equals is not valid for field eventSource. Valid operators: NotEquals"
    );
    assert_eq!(
        invalid_message(management(json!({"Field": "eventSource", "NotEquals": ["s3.amazonaws.com"]}))),
        "Value s3.amazonaws.com for field eventSource is invalid. Valid values are: kms.amazonaws.com, rdsdata.amazonaws.com"
    );
    assert_eq!(
        invalid_message(management(json!({"Field": "readOnly", "Equals": ["yes"]}))),
        "Value yes for field readOnly is invalid. Valid values are: true, false"
    );
}

#[test]
fn data_selectors_need_one_resource_type() {
    let data = |fields: Value| advanced(json!([{"FieldSelectors": fields}]));
    assert_eq!(
        invalid_message(data(json!([category("Data")]))),
        "The resources.type field is required for Data events"
    );
    assert_eq!(
        invalid_message(data(
            json!([category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object", "AWS::Lambda::Function"]}])
        )),
        "Field resources.type must have exactly one value for the Equals operator"
    );
    assert_eq!(
        invalid_message(data(json!([category("Data"),
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]))),
        "You can have only one resources.type field per selector"
    );
    assert_eq!(
        invalid_message(data(json!([category("Data"), {"Field": "resources.type", "Equals": ["S3 objects"]}]))),
        "Value S3 objects for field resources.type is invalid."
    );
    assert_eq!(
        invalid_message(data(json!([category("Data"), {"Field": "resources.type", "StartsWith": ["AWS::S3"]}]))),
        "Operator StartsWith is not valid for field resources.type. Valid operators: Equals"
    );
    // Advanced-only resource types are fine.
    assert!(
        data(json!([category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3Outposts::Object"]}])).is_ok()
    );
}

#[test]
fn network_activity_selectors_need_one_event_source() {
    let network = |fields: Value| advanced(json!([{"FieldSelectors": fields}]));
    assert_eq!(
        invalid_message(network(json!([category("NetworkActivity")]))),
        "The eventSource field is required for NetworkActivity events"
    );
    assert_eq!(
        invalid_message(network(
            json!([category("NetworkActivity"), {"Field": "eventSource", "Equals": ["kms.amazonaws.com", "s3.amazonaws.com"]}])
        )),
        "Field eventSource must have exactly one value for the Equals operator"
    );
    assert_eq!(
        invalid_message(network(
            json!([category("NetworkActivity"), {"Field": "eventSource", "Equals": ["kms.amazonaws.com"]},
            {"Field": "errorCode", "Equals": ["AccessDenied"]}])
        )),
        "Value AccessDenied for field errorCode is invalid. Valid values are: VpceAccessDenied"
    );
    assert!(network(json!([category("NetworkActivity"), {"Field": "eventSource", "Equals": ["ec2.amazonaws.com"]},
        {"Field": "vpcEndpointId", "NotStartsWith": ["vpce-0"]}, {"Field": "userIdentity.arn", "EndsWith": ["/admin"]}])).is_ok());
}

#[test]
fn operator_lists_and_values_have_limits() {
    let management = |extra: Value| advanced(json!([{"FieldSelectors": [category("Management"), extra]}]));
    assert_eq!(
        invalid_message(management(json!({"Field": "readOnly", "Equals": []}))),
        "Operator Equals of field readOnly must have at least one value"
    );
    assert_eq!(
        invalid_message(management(json!({"Field": "readOnly"}))),
        "Field readOnly must have at least one operator"
    );
    assert_eq!(
        invalid_message(management(json!({"Field": "readOnly", "Equals": [""]}))),
        "Values of operator Equals of field readOnly must be 1 to 2048 characters long"
    );
    let long = "n".repeat(2049);
    let data = advanced(
        json!([{"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "eventName", "Equals": [long]}]}]),
    );
    assert_eq!(invalid_message(data), "Values of operator Equals of field eventName must be 1 to 2048 characters long");
    let name = "n".repeat(1001);
    assert_eq!(
        invalid_message(advanced(json!([{"Name": name, "FieldSelectors": [category("Management")]}]))),
        "AdvancedEventSelector Name must be at most 1000 characters long"
    );
    assert!(advanced(json!([{"Name": "n".repeat(1000), "FieldSelectors": [category("Management")]}])).is_ok());
}

#[test]
fn at_most_500_condition_values_per_trail() {
    let selector = |names: usize| {
        let names: Vec<String> = (0..names).map(|i| format!("Op{i}")).collect();
        json!({"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "eventName", "NotEquals": names}]})
    };
    // Each selector spends two values on eventCategory and resources.type.
    assert!(advanced(json!([selector(248), selector(248)])).is_ok());
    let message = invalid_message(advanced(json!([selector(248), selector(249)])));
    assert_eq!(
        message,
        "Specify up to 500 values for all conditions in all advanced event selectors for a trail; these selectors have 501"
    );
}

// ---- Advanced selectors: matching ----

#[test]
fn select_operators_are_ored_and_deselect_operators_exclude() {
    // The example of "How CloudTrail evaluates multiple conditions for a field".
    let selection = advanced(json!([{"Name": "S3Select", "FieldSelectors": [
        category("Data"),
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN",
         "Equals": ["arn:aws:s3:::amzn-s3-demo-bucket/object1"],
         "StartsWith": ["arn:aws:s3:::amzn-s3-demo-bucket/"],
         "EndsWith": ["object3"],
         "NotStartsWith": ["arn:aws:s3:::amzn-s3-demo-bucket/deselect"],
         "NotEndsWith": ["object5"],
         "NotEquals": ["arn:aws:s3:::amzn-s3-demo-bucket/object6"]}]}]))
    .unwrap();
    let object = |arn: &str| s3_object_event("GetObject", arn, true);
    assert!(delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket/object1")));
    assert!(delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket/object2")));
    assert!(delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket1/object3")));
    assert!(!delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket/deselectObject4")));
    assert!(!delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket/object5")));
    assert!(!delivers(&selection, &object("arn:aws:s3:::amzn-s3-demo-bucket/object6")));
    assert!(!delivers(&selection, &object("arn:aws:s3:::other-bucket/object7")));
}

#[test]
fn resources_arn_looks_at_the_selected_resource_type_only() {
    // The record also lists the bucket, whose ARN has no slash; it must not defeat the
    // exclusion of the bucket's objects.
    let selection = advanced(json!([{"FieldSelectors": [category("Data"),
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "NotStartsWith": ["arn:aws:s3:::trail-logs/"]}]}]))
    .unwrap();
    assert!(!delivers(&selection, &s3_object_event("PutObject", "arn:aws:s3:::trail-logs/AWSLogs/x.json.gz", false)));
    assert!(delivers(&selection, &s3_object_event("PutObject", "arn:aws:s3:::app-data/x", false)));
    assert!(!delivers(
        &selection,
        &data_event("lambda.amazonaws.com", "Invoke", "AWS::Lambda::Function", "arn:aws:lambda:x")
    ));
}

#[test]
fn field_selectors_are_anded_and_selectors_ored() {
    let selection = advanced(json!([
        {"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                            {"Field": "eventName", "Equals": ["PutObject"]}, {"Field": "readOnly", "Equals": ["false"]}]},
        {"FieldSelectors": [category("Management"), {"Field": "readOnly", "Equals": ["true"]}]}
    ]))
    .unwrap();
    assert!(delivers(&selection, &s3_object_event("PutObject", "arn:aws:s3:::b/k", false)));
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::b/k", true)));
    assert!(delivers(&selection, &management("ec2.amazonaws.com", "DescribeVpcs", true)));
    assert!(!delivers(&selection, &management("ec2.amazonaws.com", "CreateVpc", false)));
    assert!(selection.logs_management_events());
    assert!(!selection.logs_management_writes());
}

#[test]
fn management_selectors_exclude_kms_and_rds_data() {
    let selection = advanced(json!([{"FieldSelectors": [category("Management"),
        {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}]}]))
    .unwrap();
    assert!(!delivers(&selection, &management("kms.amazonaws.com", "Decrypt", true)));
    assert!(!delivers(&selection, &management("rdsdata.amazonaws.com", "ExecuteStatement", false)));
    assert!(delivers(&selection, &management("iam.amazonaws.com", "CreateUser", false)));
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::b/k", true)));
    assert!(selection.logs_management_writes());
}

#[test]
fn network_activity_selectors() {
    let selection = advanced(json!([{"FieldSelectors": [category("NetworkActivity"),
        {"Field": "eventSource", "Equals": ["kms.amazonaws.com"]},
        {"Field": "errorCode", "Equals": ["VpceAccessDenied"]}]}]))
    .unwrap();
    assert!(delivers(&selection, &network_event("kms.amazonaws.com", "ListKeys", Some("VpceAccessDenied"))));
    assert!(!delivers(&selection, &network_event("kms.amazonaws.com", "ListKeys", None)));
    assert!(!delivers(&selection, &network_event("s3.amazonaws.com", "GetObject", Some("VpceAccessDenied"))));
    assert!(!delivers(&selection, &management("kms.amazonaws.com", "ListKeys", true)));
    assert!(!selection.logs_management_events());
}

#[test]
fn a_missing_field_fails_select_and_passes_deselect_operators() {
    let with_condition = |condition: Value| {
        advanced(json!([{"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}, condition]}]))
            .unwrap()
    };
    let anonymous = s3_object_event("GetObject", "arn:aws:s3:::b/k", true);
    assert!(!delivers(&with_condition(json!({"Field": "userIdentity.arn", "StartsWith": ["arn:"]})), &anonymous));
    assert!(delivers(
        &with_condition(json!({"Field": "userIdentity.arn", "NotStartsWith": ["arn:aws:sts::"]})),
        &anonymous
    ));
    // readOnly absent reads as "false"; sessionCredentialFromConsole absent as "false".
    let mut unknown_read = anonymous.clone();
    unknown_read.as_object_mut().unwrap().remove("readOnly");
    assert!(delivers(&with_condition(json!({"Field": "readOnly", "Equals": ["false"]})), &unknown_read));
    assert!(delivers(
        &with_condition(json!({"Field": "sessionCredentialFromConsole", "NotEquals": ["true"]})),
        &anonymous
    ));
    let mut console = anonymous.clone();
    console["sessionCredentialFromConsole"] = json!("true");
    assert!(delivers(&with_condition(json!({"Field": "sessionCredentialFromConsole", "Equals": ["true"]})), &console));
    assert!(!delivers(
        &with_condition(json!({"Field": "sessionCredentialFromConsole", "Equals": ["true"]})),
        &anonymous
    ));
}

#[test]
fn wildcards_are_literal() {
    let selection = advanced(
        json!([{"FieldSelectors": [category("Data"), {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::*"]}]}]),
    )
    .unwrap();
    assert!(!delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::b/k", true)));
    assert!(delivers(&selection, &s3_object_event("GetObject", "arn:aws:s3:::*x/k", true)));
}

#[test]
fn advanced_selectors_never_pick_insights_events() {
    for event_category in ["Management", "Data", "NetworkActivity"] {
        let mut fields = vec![category(event_category)];
        if event_category == "Data" {
            fields.push(json!({"Field": "resources.type", "Equals": ["AWS::S3::Object"]}));
        }
        if event_category == "NetworkActivity" {
            fields.push(json!({"Field": "eventSource", "Equals": ["iam.amazonaws.com"]}));
        }
        assert!(!delivers(&advanced(json!([{"FieldSelectors": fields}])).unwrap(), &insight_event()));
    }
}

#[test]
fn unvalidated_selectors_never_panic_and_select_conservatively() {
    // Loaded from elsewhere without validation: an unknown field never holds, and a
    // selector without conditions selects nothing.
    let odd = Selection::Advanced(vec![
        AdvancedEventSelector { name: None, field_selectors: vec![] },
        AdvancedEventSelector {
            name: None,
            field_selectors: vec![AdvancedFieldSelector {
                field: "surprise".into(),
                equals: Some(vec!["x".into()]),
                ..AdvancedFieldSelector::default()
            }],
        },
    ]);
    assert!(!delivers(&odd, &management("ec2.amazonaws.com", "RunInstances", false)));
    let odd_basic = Selection::Basic(vec![EventSelector {
        read_write_type: Some(ReadWriteType::Invalid("x".into())),
        ..EventSelector::default()
    }]);
    assert!(!delivers(&odd_basic, &management("ec2.amazonaws.com", "RunInstances", false)));
}

// ---- Wire format ----

#[test]
fn wire_members_are_pascal_case_and_absent_members_stay_absent() {
    let selector: AdvancedEventSelector = serde_json::from_value(json!({"FieldSelectors": [
        {"Field": "eventName", "NotStartsWith": ["Get"], "NotEndsWith": ["x"], "StartsWith": null}]}))
    .unwrap();
    assert_eq!(selector.name, None);
    assert_eq!(selector.field_selectors[0].not_starts_with.as_deref(), Some(&["Get".to_owned()][..]));
    assert_eq!(selector.field_selectors[0].starts_with, None);
    assert_eq!(
        serde_json::to_value(&selector).unwrap(),
        json!({"FieldSelectors": [{"Field": "eventName", "NotStartsWith": ["Get"], "NotEndsWith": ["x"]}]})
    );
    let basic: EventSelector = serde_json::from_value(json!({"ReadWriteType": "WriteOnly"})).unwrap();
    assert_eq!(basic.read_write_type, Some(ReadWriteType::WriteOnly));
    assert_eq!(serde_json::to_value(&basic).unwrap(), json!({"ReadWriteType": "WriteOnly"}));
    let stored = Selection::for_trail(Some(vec![basic]), None).unwrap();
    let round_trip: Selection = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    assert_eq!(round_trip, stored);
}

// ---- EventView and global services ----

#[test]
fn event_view_reads_odd_shapes_leniently() {
    let text = br#"{"eventSource":5,"eventName":"GetObject","readOnly":"True","sessionCredentialFromConsole":true,
        "userIdentity":"nobody","tlsDetails":[1],"managementEvent":"false",
        "resources":[1,{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k\u0041"},null,{"type":7}]}"#;
    let view = EventView::parse(text).unwrap();
    assert_eq!(view.event_source(), None);
    assert_eq!(view.event_name(), Some("GetObject"));
    assert_eq!(view.read_only(), Some(true));
    assert!(!view.is_write());
    assert!(view.session_credential_from_console());
    assert_eq!(view.user_identity_arn(), None);
    assert_eq!(view.category(), Category::Data);
    assert_eq!(view.event_category(), "Data");
    assert_eq!(view.resources().len(), 2);
    assert_eq!(view.resources()[0].arn.as_deref(), Some("arn:aws:s3:::b/kA"));
    assert_eq!(view.resources()[1].resource_type, None);
    let view = EventView::parse(br#"{"resources":"none","userIdentity":null}"#).unwrap();
    assert!(view.resources().is_empty());
    assert_eq!(view.category(), Category::Management);
    assert!(EventView::parse(b"[1]").is_err());
    assert!(EventView::parse(b"{\"eventName\":").is_err());
}

#[test]
fn event_view_keeps_categories_it_does_not_know() {
    let view = EventView::parse(br#"{"eventCategory":"ConfigurationItem"}"#).unwrap();
    assert_eq!(view.category(), Category::Other);
    assert_eq!(view.event_category(), "ConfigurationItem");
    let view = EventView::parse(br#"{"eventType":"AwsVpceEvent"}"#).unwrap();
    assert_eq!(view.event_category(), "NetworkActivity");
}

#[test]
fn global_service_events() {
    let global = |record: Value| {
        let text = serde_json::to_vec(&record).unwrap();
        is_global_service_event(&EventView::parse(&text).unwrap())
    };
    assert!(global(json!({"eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1"})));
    assert!(global(json!({"eventSource": "cloudfront.amazonaws.com"})));
    assert!(global(json!({"eventSource": "route53.amazonaws.com"})));
    assert!(!global(json!({"eventSource": "ec2.amazonaws.com", "awsRegion": "us-east-1"})));
    assert!(!global(json!({"eventSource": "signin.amazonaws.com", "awsRegion": "us-east-1"})));
    let sts = |region: &str, host: Option<&str>| {
        let mut record = json!({"eventSource": "sts.amazonaws.com", "awsRegion": region});
        if let Some(host) = host {
            record["tlsDetails"] = json!({"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": host});
        }
        global(record)
    };
    assert!(sts("us-east-1", Some("sts.amazonaws.com")));
    assert!(!sts("us-east-1", Some("sts.us-east-1.amazonaws.com")));
    assert!(!sts("eu-west-1", Some("sts.eu-west-1.amazonaws.com")));
    assert!(sts("us-east-1", None));
    assert!(!sts("eu-west-1", None));
}
