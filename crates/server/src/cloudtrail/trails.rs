//! The trail lifecycle: CreateTrail, UpdateTrail, DeleteTrail, GetTrail, DescribeTrails,
//! ListTrails, GetTrailStatus, StartLogging and StopLogging.
//!
//! A trail lives in one account and its home Region. A multi-Region trail also shows in
//! every other Region as a *shadow trail*: readable there, changeable only from home.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Output;
use super::inputs::{deserialize_input, epoch_seconds};
use crate::api::{ApiError, Caller, now_ms};
use crate::delivery::{self, TrailKey};
use crate::state::AppState;
use crate::trails::{Tag, Trail, TrailRef, trail_arn};

/// What a request may do with the trail it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Reads work from any Region the trail covers.
    Read,
    /// Changes must be made in the trail's home Region.
    Change,
}

/// Finds the trail a `Name`/`TrailName` parameter names, among the caller's account's
/// trails. A name means a trail of the caller's Region; another Region's trail (a shadow
/// trail) is reached by its ARN, and only to read it.
pub fn resolve(trails: &[Trail], caller: &Caller, text: &str, purpose: Purpose) -> Result<usize, ApiError> {
    let account = &caller.principal.account_id;
    let reference = TrailRef::parse(text)?;
    let found = match &reference {
        TrailRef::Arn { region, account_id, name } => trails
            .iter()
            .position(|trail| &trail.account_id == account_id && &trail.home_region == region && &trail.name == name)
            .filter(|&index| account_id == account && trails[index].covers_region(&caller.region)),
        TrailRef::Name(name) => trails.iter().position(|trail| {
            &trail.account_id == account && trail.home_region == caller.region && &trail.name == name
        }),
    };
    let Some(index) = found else {
        let shown = match &reference {
            TrailRef::Arn { .. } => text.to_owned(),
            TrailRef::Name(name) => trail_arn(&caller.region, account, name),
        };
        return Err(not_found(&shown, account));
    };
    let trail = &trails[index];
    if purpose == Purpose::Change && trail.home_region != caller.region {
        return Err(ApiError::client(
            "InvalidHomeRegionException",
            format!("This operation must be called from the trail's home region {}.", trail.home_region),
        ));
    }
    Ok(index)
}

pub fn not_found(shown: &str, account: &str) -> ApiError {
    ApiError::client("TrailNotFoundException", format!("Unknown trail: {shown} for the user: {account}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrailSettings {
    name: Option<String>,
    s3_bucket_name: Option<String>,
    s3_key_prefix: Option<String>,
    sns_topic_name: Option<String>,
    include_global_service_events: Option<bool>,
    is_multi_region_trail: Option<bool>,
    enable_log_file_validation: Option<bool>,
    cloud_watch_logs_log_group_arn: Option<String>,
    cloud_watch_logs_role_arn: Option<String>,
    kms_key_id: Option<String>,
    is_organization_trail: Option<bool>,
    tags_list: Option<Vec<Tag>>,
}

/// A required string member, refused with `code` when absent or empty.
pub fn required<'a>(value: &'a Option<String>, member: &str, code: &'static str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|text| !text.is_empty())
        .ok_or_else(|| ApiError::client(code, format!("{member} is required.")))
}

/// The `Name` of a trail operation; CloudTrail answers its absence with TrailNotProvidedException.
fn trail_name(value: &Option<String>) -> Result<&str, ApiError> {
    required(value, "Name", "TrailNotProvidedException")
}

/// Refuses what Trailkeeper cannot honour yet rather than accept it and not do it.
fn refuse_unsupported(settings: &TrailSettings) -> Result<(), ApiError> {
    if settings.cloud_watch_logs_log_group_arn.as_deref().is_some_and(|arn| !arn.is_empty())
        || settings.cloud_watch_logs_role_arn.as_deref().is_some_and(|arn| !arn.is_empty())
    {
        return Err(ApiError::client(
            "CloudWatchLogsDeliveryUnavailableException",
            "Delivery of trail events to CloudWatch Logs is not available on this endpoint.",
        ));
    }
    if settings.kms_key_id.as_deref().is_some_and(|key| !key.is_empty()) {
        return Err(ApiError::client(
            "KmsKeyNotFoundException",
            format!("KMS key not found: {}", settings.kms_key_id.as_deref().unwrap_or_default()),
        ));
    }
    if settings.is_organization_trail == Some(true) {
        return Err(ApiError::client(
            "OrganizationsNotInUseException",
            "This account is not a member of an organization.",
        ));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix.chars().count() > 200 || prefix.starts_with('/') || prefix.contains("//") {
        return Err(ApiError::client(
            "InvalidS3PrefixException",
            format!("Invalid S3 prefix: {prefix}. A prefix is at most 200 characters and has no empty path segments."),
        ));
    }
    Ok(())
}

pub fn check_tags(tags: &[Tag], existing: usize) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::client("InvalidTagParameterException", message);
    for tag in tags {
        let key_chars = tag.key.chars().count();
        if !(1..=128).contains(&key_chars) {
            return Err(invalid(format!("Tag key {:?} must be 1 to 128 characters long.", tag.key)));
        }
        if tag.key.starts_with("aws:") {
            return Err(invalid(format!("Tag key {:?} uses the reserved prefix aws:.", tag.key)));
        }
        if tag.value.as_deref().is_some_and(|value| value.chars().count() > 256) {
            return Err(invalid(format!("The value of tag {:?} is longer than 256 characters.", tag.key)));
        }
    }
    let mut keys: Vec<&str> = tags.iter().map(|tag| tag.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(invalid("Duplicate tag keys in the request.".to_owned()));
    }
    if existing + tags.len() > 50 {
        return Err(ApiError::client(
            "TagsLimitExceededException",
            "The number of tags on the resource would exceed the limit of 50.",
        ));
    }
    Ok(())
}

/// The Create/UpdateTrail response: the trail's settings, as the model's output shape.
fn settings_json(trail: &Trail) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(trail.name));
    out.insert("S3BucketName".into(), json!(trail.s3_bucket_name));
    if let Some(prefix) = &trail.s3_key_prefix {
        out.insert("S3KeyPrefix".into(), json!(prefix));
    }
    if let (Some(name), Some(arn)) = (&trail.sns_topic_name, &trail.sns_topic_arn) {
        out.insert("SnsTopicName".into(), json!(name));
        out.insert("SnsTopicARN".into(), json!(arn));
    }
    out.insert("IncludeGlobalServiceEvents".into(), json!(trail.include_global_service_events));
    out.insert("IsMultiRegionTrail".into(), json!(trail.is_multi_region_trail));
    out.insert("TrailARN".into(), json!(trail.arn()));
    out.insert("LogFileValidationEnabled".into(), json!(trail.log_file_validation_enabled));
    out.insert("IsOrganizationTrail".into(), json!(false));
    Value::Object(out)
}

/// The `Trail` shape of GetTrail and DescribeTrails.
pub fn trail_json(trail: &Trail) -> Value {
    let mut out = settings_json(trail);
    if let Value::Object(map) = &mut out {
        map.insert("HomeRegion".into(), json!(trail.home_region));
        map.insert("HasCustomEventSelectors".into(), json!(trail.selection().has_custom()));
        map.insert("HasInsightSelectors".into(), json!(!trail.insight_selectors.is_empty()));
    }
    out
}

pub async fn create_trail(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let settings: TrailSettings = deserialize_input(input)?;
    let name = trail_name(&settings.name)?;
    crate::trails::names::check_name(name)?;
    let bucket = required(&settings.s3_bucket_name, "S3BucketName", "InvalidParameterException")?.to_owned();
    refuse_unsupported(&settings)?;
    let multi_region = settings.is_multi_region_trail.unwrap_or(false);
    let global = settings.include_global_service_events.unwrap_or(true);
    if multi_region && !global {
        return Err(ApiError::client(
            "InvalidParameterCombinationException",
            "Multi-Region trail must include global service events.",
        ));
    }
    let prefix = settings.s3_key_prefix.clone().filter(|prefix| !prefix.is_empty());
    if let Some(prefix) = &prefix {
        check_prefix(prefix)?;
    }
    let tags = settings.tags_list.clone().unwrap_or_default();
    check_tags(&tags, 0)?;
    let account = caller.principal.account_id.clone();
    delivery::sink::check_bucket(state, &account, &bucket).await?;
    let topic = match settings.sns_topic_name.as_deref().filter(|topic| !topic.is_empty()) {
        Some(topic) => Some((topic.to_owned(), find_topic(state, caller, topic)?)),
        None => None,
    };
    let trail = Trail {
        name: name.to_owned(),
        account_id: account.clone(),
        home_region: caller.region.clone(),
        s3_bucket_name: bucket,
        s3_key_prefix: prefix,
        sns_topic_name: topic.as_ref().map(|(name, _)| name.clone()),
        sns_topic_arn: topic.map(|(_, arn)| arn),
        include_global_service_events: global,
        is_multi_region_trail: multi_region,
        log_file_validation_enabled: settings.enable_log_file_validation.unwrap_or(false),
        event_selectors: None,
        advanced_event_selectors: None,
        insight_selectors: Vec::new(),
        tags,
        logging: Vec::new(),
        start_logging_time_ms: None,
        stop_logging_time_ms: None,
        created_ms: now_ms(),
    };
    let limit = state.config.max_trails_per_region;
    let created = state.trails.update(|trails| {
        let clash = trails.iter().find(|other| {
            other.account_id == trail.account_id
                && other.name == trail.name
                && (other.covers_region(&trail.home_region) || trail.is_multi_region_trail)
        });
        if let Some(other) = clash {
            return Err(ApiError::client(
                "TrailAlreadyExistsException",
                format!("Trail {} already exists for customer: {}", other.name, trail.account_id),
            ));
        }
        let in_region = trails
            .iter()
            .filter(|other| other.account_id == trail.account_id && other.covers_region(&trail.home_region));
        if in_region.count() >= limit {
            return Err(ApiError::client(
                "MaximumNumberOfTrailsExceededException",
                format!("User: {} already has {limit} trails in {}.", trail.account_id, trail.home_region),
            ));
        }
        trails.push(trail.clone());
        Ok(trail)
    })?;
    Ok(Output::recorded(settings_json(&created)))
}

fn find_topic(state: &AppState, caller: &Caller, topic: &str) -> Result<String, ApiError> {
    state.topics.find(&caller.principal.account_id, &caller.region, topic).ok_or_else(|| {
        ApiError::client(
            "InsufficientSnsTopicPolicyException",
            "SNS Topic does not exist or the topic policy is incorrect!",
        )
    })
}

pub async fn update_trail(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let settings: TrailSettings = deserialize_input(input)?;
    let name = trail_name(&settings.name)?.to_owned();
    refuse_unsupported(&settings)?;
    if let Some(prefix) = settings.s3_key_prefix.as_deref().filter(|prefix| !prefix.is_empty()) {
        check_prefix(prefix)?;
    }
    let account = caller.principal.account_id.clone();
    if let Some(bucket) = settings.s3_bucket_name.as_deref() {
        delivery::sink::check_bucket(state, &account, bucket).await?;
    }
    let topic = match settings.sns_topic_name.as_deref() {
        Some("") => Some(None),
        Some(topic) => Some(Some((topic.to_owned(), find_topic(state, caller, topic)?))),
        None => None,
    };
    let updated = state.trails.update(|trails| {
        let index = resolve(trails, caller, &name, Purpose::Change)?;
        let mut trail = trails[index].clone();
        if let Some(bucket) = &settings.s3_bucket_name {
            trail.s3_bucket_name = bucket.clone();
        }
        if let Some(prefix) = &settings.s3_key_prefix {
            trail.s3_key_prefix = Some(prefix.clone()).filter(|prefix| !prefix.is_empty());
        }
        if let Some(topic) = topic {
            trail.sns_topic_name = topic.as_ref().map(|(name, _)| name.clone());
            trail.sns_topic_arn = topic.map(|(_, arn)| arn);
        }
        if let Some(global) = settings.include_global_service_events {
            trail.include_global_service_events = global;
        }
        if let Some(multi_region) = settings.is_multi_region_trail {
            if multi_region && !trail.is_multi_region_trail {
                let clash = trails.iter().any(|other| {
                    other.account_id == trail.account_id && other.name == trail.name && other.arn() != trail.arn()
                });
                if clash {
                    return Err(ApiError::client(
                        "TrailAlreadyExistsException",
                        format!(
                            "Trail {} already exists in another region for customer: {}",
                            trail.name, trail.account_id
                        ),
                    ));
                }
            }
            trail.is_multi_region_trail = multi_region;
        }
        if trail.is_multi_region_trail && !trail.include_global_service_events {
            return Err(ApiError::client(
                "InvalidParameterCombinationException",
                "Multi-Region trail must include global service events.",
            ));
        }
        if let Some(validation) = settings.enable_log_file_validation {
            trail.log_file_validation_enabled = validation;
        }
        trails[index] = trail.clone();
        Ok(trail)
    })?;
    Ok(Output::recorded(settings_json(&updated)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    name: Option<String>,
}

pub async fn delete_trail(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: NameInput = deserialize_input(input)?;
    let name = trail_name(&input.name)?;
    let deleted = state.trails.update(|trails| {
        let index = resolve(trails, caller, name, Purpose::Change)?;
        Ok(trails.remove(index))
    })?;
    delivery::forget_trail(state, &deleted);
    Ok(Output::recorded(json!({})))
}

pub async fn get_trail(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: NameInput = deserialize_input(input)?;
    let name = trail_name(&input.name)?;
    let trails = state.trails.all();
    // GetTrail names a missing trail as it was given, unlike the other operations.
    let index = resolve(&trails, caller, name, Purpose::Read).map_err(|error| match error.code {
        "TrailNotFoundException" => not_found(name, &caller.principal.account_id),
        _ => error,
    })?;
    Output::read(&json!({ "Trail": trail_json(&trails[index]) }))
}

#[derive(Debug, Deserialize)]
struct DescribeInput {
    #[serde(rename = "trailNameList")]
    trail_name_list: Option<Vec<String>>,
    #[serde(rename = "includeShadowTrails")]
    include_shadow_trails: Option<bool>,
}

pub async fn describe_trails(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: DescribeInput = deserialize_input(input)?;
    let include_shadows = input.include_shadow_trails.unwrap_or(true);
    let trails = state.trails.all();
    let account = &caller.principal.account_id;
    let visible = |trail: &Trail| {
        &trail.account_id == account
            && (trail.home_region == caller.region || (include_shadows && trail.covers_region(&caller.region)))
    };
    let names = input.trail_name_list.unwrap_or_default();
    let mut listed: Vec<&Trail> = Vec::new();
    if names.is_empty() {
        listed.extend(trails.iter().filter(|trail| visible(trail)));
    } else {
        // Names that match no trail are left out, as CloudTrail does; malformed ones are refused.
        for name in &names {
            let reference = TrailRef::parse(name)?;
            let found = trails.iter().find(|trail| {
                visible(trail)
                    && match &reference {
                        TrailRef::Arn { .. } => trail.arn() == *name,
                        TrailRef::Name(name) => &trail.name == name,
                    }
            });
            if let Some(trail) = found.filter(|trail| !listed.iter().any(|seen| seen.arn() == trail.arn())) {
                listed.push(trail);
            }
        }
    }
    let list: Vec<Value> = listed.into_iter().map(trail_json).collect();
    Output::read(&json!({ "trailList": list }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    next_token: Option<String>,
}

/// ListTrails pages by trail ARN: the token is the last ARN of the previous page.
const LIST_TRAILS_PAGE: usize = 50;

pub async fn list_trails(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: ListInput = deserialize_input(input)?;
    let mut trails: Vec<Trail> =
        state.trails.all().into_iter().filter(|trail| trail.account_id == caller.principal.account_id).collect();
    trails.sort_by_key(Trail::arn);
    let start = match &input.next_token {
        None => 0,
        Some(token) => {
            let after = decode_token(token)
                .ok_or_else(|| ApiError::client("InvalidNextTokenException", "Invalid NextToken."))?;
            trails.partition_point(|trail| trail.arn() <= after)
        }
    };
    let page = &trails[start.min(trails.len())..(start + LIST_TRAILS_PAGE).min(trails.len())];
    let items: Vec<Value> = page
        .iter()
        .map(|trail| json!({ "TrailARN": trail.arn(), "Name": trail.name, "HomeRegion": trail.home_region }))
        .collect();
    let mut out = json!({ "Trails": items });
    if start + LIST_TRAILS_PAGE < trails.len()
        && let Some(last) = page.last()
    {
        out["NextToken"] = json!(encode_token(&last.arn()));
    }
    Output::read(&out)
}

fn encode_token(arn: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(arn)
}

fn decode_token(token: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes).ok().filter(|arn| TrailRef::parse(arn).is_ok_and(|r| matches!(r, TrailRef::Arn { .. })))
}

pub async fn get_trail_status(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: NameInput = deserialize_input(input)?;
    let name = trail_name(&input.name)?;
    let trails = state.trails.all();
    let trail = &trails[resolve(&trails, caller, name, Purpose::Read)?];
    let status = delivery::status(state, trail);
    let mut out = Map::new();
    out.insert("IsLogging".into(), json!(trail.is_logging()));
    let mut time = |member: &str, ms: Option<i64>| {
        if let Some(ms) = ms {
            out.insert(member.into(), json!(epoch_seconds(ms)));
        }
    };
    time("LatestDeliveryTime", status.latest_delivery_time_ms);
    time("LatestNotificationTime", status.latest_notification_time_ms);
    time("LatestDigestDeliveryTime", status.latest_digest_delivery_time_ms);
    time("StartLoggingTime", trail.start_logging_time_ms);
    time("StopLoggingTime", trail.stop_logging_time_ms);
    if let Some(error) = &status.latest_delivery_error {
        out.insert("LatestDeliveryError".into(), json!(error));
    }
    if let Some(error) = &status.latest_notification_error {
        out.insert("LatestNotificationError".into(), json!(error));
    }
    if let Some(error) = &status.latest_digest_delivery_error {
        out.insert("LatestDigestDeliveryError".into(), json!(error));
    }
    // The deprecated string members, still filled in by CloudTrail.
    let text = |ms: Option<i64>| ms.map(|ms| json!(trailkeeper_core::time::format_event_time(ms)));
    for (member, value) in [
        ("TimeLoggingStarted", text(trail.start_logging_time_ms)),
        ("TimeLoggingStopped", text(trail.stop_logging_time_ms)),
        ("LatestDeliveryAttemptTime", text(status.latest_delivery_attempt_ms)),
        ("LatestNotificationAttemptTime", text(status.latest_notification_attempt_ms)),
    ] {
        if let Some(value) = value {
            out.insert(member.into(), value);
        }
    }
    if status.latest_delivery_attempt_ms.is_some() {
        out.insert(
            "LatestDeliveryAttemptSucceeded".into(),
            json!(text(status.latest_delivery_time_ms).unwrap_or(json!(""))),
        );
    }
    if status.latest_notification_attempt_ms.is_some() {
        out.insert(
            "LatestNotificationAttemptSucceeded".into(),
            json!(text(status.latest_notification_time_ms).unwrap_or(json!(""))),
        );
    }
    Output::read(&Value::Object(out))
}

pub async fn start_logging(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    set_logging(state, caller, input, true)
}

pub async fn stop_logging(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    set_logging(state, caller, input, false)
}

fn set_logging(state: &AppState, caller: &Caller, input: &Value, on: bool) -> Result<Output, ApiError> {
    let input: NameInput = deserialize_input(input)?;
    let name = trail_name(&input.name)?;
    let stopped_trail = state.trails.update(|trails| {
        let index = resolve(trails, caller, name, Purpose::Change)?;
        let last_seq = state.log.last_seq();
        let trail = &mut trails[index];
        if on {
            trail.start_logging(last_seq, now_ms());
            Ok(None)
        } else {
            Ok(trail.stop_logging(last_seq, now_ms()).then(|| TrailKey::of(trail)))
        }
    })?;
    Ok(Output { stopped_trail, ..Output::recorded(json!({})) })
}

/// Closes a stopped trail's logging window at the StopLogging record stored at
/// `record_seq`, or where the stop closed it when the record was not stored.
pub fn settle_stop(state: &AppState, key: &TrailKey, record_seq: Option<u64>) {
    let settled = state.trails.update(|trails| {
        if let Some(trail) = trails.iter_mut().find(|trail| TrailKey::of(trail) == *key) {
            trail.settle_stop(record_seq);
        }
        Ok(())
    });
    if let Err(error) = settled {
        // The registry keeps the wait; the next start settles it where the stop closed it.
        tracing::error!(trail = %key.arn, message = %error.message, "could not close the stopped trail's window");
    }
}
