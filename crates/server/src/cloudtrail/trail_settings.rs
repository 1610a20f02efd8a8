//! What a trail selects and how it is labelled: PutEventSelectors, GetEventSelectors,
//! PutInsightSelectors, GetInsightSelectors, AddTags, RemoveTags and ListTags.

use serde::Deserialize;
use serde_json::{Value, json};
use trailkeeper_core::selectors::{AdvancedEventSelector, EventSelector, Selection};

use super::Output;
use super::inputs::deserialize_input;
use super::trails::{Purpose, check_tags, required, resolve};
use crate::api::{ApiError, Caller};
use crate::state::AppState;
use crate::trails::{InsightSelector, Tag, Trail, TrailRef};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventSelectorsInput {
    trail_name: Option<String>,
    event_selectors: Option<Vec<EventSelector>>,
    advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
}

fn trail_name(name: &Option<String>) -> Result<&str, ApiError> {
    required(name, "TrailName", "InvalidTrailNameException")
}

/// The selectors part of Put/GetEventSelectors' output. A trail with no selectors set
/// shows the one basic selector that stands for CloudTrail's default.
fn selectors_json(trail: &Trail) -> Value {
    let selection = trail.selection();
    match selection.advanced_event_selectors() {
        Some(advanced) => json!({ "TrailARN": trail.arn(), "AdvancedEventSelectors": advanced }),
        None => json!({ "TrailARN": trail.arn(), "EventSelectors": selection.event_selectors() }),
    }
}

pub async fn put_event_selectors(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: PutEventSelectorsInput = deserialize_input(input)?;
    let name = trail_name(&input.trail_name)?;
    let selection = Selection::for_trail(input.event_selectors, input.advanced_event_selectors)
        .map_err(|error| ApiError::client(error.code, error.message))?;
    let trail = state.trails.update(|trails| {
        let index = resolve(trails, caller, name, Purpose::Change)?;
        let trail = &mut trails[index];
        let (basic, advanced) = match selection {
            Selection::Default => (None, None),
            Selection::Basic(basic) => (Some(basic), None),
            Selection::Advanced(advanced) => (None, Some(advanced)),
        };
        trail.event_selectors = basic;
        trail.advanced_event_selectors = advanced;
        check_insights_still_hold(trail)?;
        Ok(trail.clone())
    })?;
    Ok(Output::recorded(selectors_json(&trail)))
}

/// Insights need the management events they watch; a selector change that drops them is
/// refused while Insights are on.
fn check_insights_still_hold(trail: &Trail) -> Result<(), ApiError> {
    let selection = trail.selection();
    for insight in &trail.insight_selectors {
        let holds = match insight.insight_type.as_str() {
            "ApiCallRateInsight" => selection.logs_management_writes(),
            _ => selection.logs_management_events(),
        };
        if !holds {
            return Err(ApiError::client(
                "InvalidEventSelectorsException",
                format!(
                    "{} requires the trail to log {} management events.",
                    insight.insight_type,
                    if insight.insight_type == "ApiCallRateInsight" { "write" } else { "read or write" }
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrailNameInput {
    trail_name: Option<String>,
}

pub async fn get_event_selectors(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: TrailNameInput = deserialize_input(input)?;
    let name = trail_name(&input.trail_name)?;
    let trails = state.trails.all();
    let trail = &trails[resolve(&trails, caller, name, Purpose::Read)?];
    Output::read(&selectors_json(trail))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInsightSelectorsInput {
    trail_name: Option<String>,
    event_data_store: Option<String>,
    insight_selectors: Option<Vec<InsightSelector>>,
}

const INSIGHT_TYPES: [&str; 2] = ["ApiCallRateInsight", "ApiErrorRateInsight"];

pub async fn put_insight_selectors(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: PutInsightSelectorsInput = deserialize_input(input)?;
    if input.event_data_store.is_some() {
        return Err(ApiError::client(
            "UnsupportedOperationException",
            "Insights for event data stores are not supported on this endpoint; name a trail.",
        ));
    }
    let name = trail_name(&input.trail_name)?;
    let selectors = input
        .insight_selectors
        .ok_or_else(|| ApiError::client("InvalidInsightSelectorsException", "InsightSelectors is required."))?;
    let invalid = |message: String| ApiError::client("InvalidInsightSelectorsException", message);
    for selector in &selectors {
        if !INSIGHT_TYPES.contains(&selector.insight_type.as_str()) {
            return Err(invalid(format!(
                "Invalid InsightType {:?}: valid values are ApiCallRateInsight and ApiErrorRateInsight.",
                selector.insight_type
            )));
        }
        for category in selector.event_categories.iter().flatten() {
            if category != "Management" {
                return Err(invalid(format!(
                    "Invalid EventCategories value {category:?}: trails support Insights on Management events."
                )));
            }
        }
    }
    if selectors.iter().enumerate().any(|(i, a)| selectors[..i].iter().any(|b| a.insight_type == b.insight_type)) {
        return Err(invalid("Each InsightType may appear only once.".to_owned()));
    }
    let trail = state.trails.update(|trails| {
        let index = resolve(trails, caller, name, Purpose::Change)?;
        let trail = &mut trails[index];
        trail.insight_selectors = selectors;
        check_insights_still_hold(trail).map_err(|error| invalid(error.message))?;
        Ok(trail.clone())
    })?;
    Ok(Output::recorded(json!({ "TrailARN": trail.arn(), "InsightSelectors": trail.insight_selectors })))
}

pub async fn get_insight_selectors(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: TrailNameInput = deserialize_input(input)?;
    let name = trail_name(&input.trail_name)?;
    let trails = state.trails.all();
    let trail = &trails[resolve(&trails, caller, name, Purpose::Read)?];
    if trail.insight_selectors.is_empty() {
        return Err(ApiError::client(
            "InsightNotEnabledException",
            format!(
                "Trail {} does not have Insights enabled. Enable Insights on the trail, and then try the operation again.",
                trail.arn()
            ),
        ));
    }
    Output::read(&json!({ "TrailARN": trail.arn(), "InsightSelectors": trail.insight_selectors }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagsInput {
    resource_id: Option<String>,
    tags_list: Option<Vec<Tag>>,
}

/// Tags name their trail by ARN only, and only a trail of the caller's own Region and
/// account.
fn tagged_trail(trails: &[Trail], caller: &Caller, resource_id: &Option<String>) -> Result<usize, ApiError> {
    let arn = resource_id
        .as_deref()
        .ok_or_else(|| ApiError::client("ResourceNotFoundException", "ResourceId is required."))?;
    let arn_invalid = |message: String| ApiError::client("CloudTrailARNInvalidException", message);
    match TrailRef::parse(arn) {
        Ok(TrailRef::Arn { region, account_id, .. }) => {
            if region != caller.region {
                return Err(arn_invalid(format!(
                    "Region in ARN is wrong, you can only access resources in region {}.",
                    caller.region
                )));
            }
            if account_id != caller.principal.account_id {
                return Err(arn_invalid(format!(
                    "AccountID in ARN is wrong, you can only access resources with AccountID {}.",
                    caller.principal.account_id
                )));
            }
        }
        _ if arn.contains(":eventdatastore/") || arn.contains(":channel/") || arn.contains(":dashboard/") => {
            return Err(ApiError::client(
                "ResourceTypeNotSupportedException",
                format!("Resource type not supported for tagging on this endpoint: {arn}"),
            ));
        }
        _ => return Err(arn_invalid(format!("Invalid trail ARN: {arn}"))),
    }
    resolve(trails, caller, arn, Purpose::Change).map_err(|error| match error.code {
        "TrailNotFoundException" => ApiError::client("ResourceNotFoundException", format!("Resource not found: {arn}")),
        _ => error,
    })
}

pub async fn add_tags(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: TagsInput = deserialize_input(input)?;
    let tags = input.tags_list.unwrap_or_default();
    state.trails.update(|trails| {
        let index = tagged_trail(trails, caller, &input.resource_id)?;
        let trail = &mut trails[index];
        let new: Vec<Tag> =
            tags.iter().filter(|tag| !trail.tags.iter().any(|old| old.key == tag.key)).cloned().collect();
        check_tags(&tags, trail.tags.len() - (tags.len() - new.len()))?;
        for tag in tags {
            match trail.tags.iter_mut().find(|old| old.key == tag.key) {
                Some(old) => old.value = tag.value,
                None => trail.tags.push(tag),
            }
        }
        Ok(())
    })?;
    Ok(Output::recorded(json!({})))
}

pub async fn remove_tags(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: TagsInput = deserialize_input(input)?;
    let tags = input.tags_list.unwrap_or_default();
    state.trails.update(|trails| {
        let index = tagged_trail(trails, caller, &input.resource_id)?;
        // A tag is removed when its key matches and, if a value is given, its value too.
        trails[index].tags.retain(|old| {
            !tags.iter().any(|tag| tag.key == old.key && (tag.value.is_none() || tag.value == old.value))
        });
        Ok(())
    })?;
    Ok(Output::recorded(json!({})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsInput {
    resource_id_list: Option<Vec<String>>,
    next_token: Option<String>,
}

pub async fn list_tags(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let input: ListTagsInput = deserialize_input(input)?;
    if input.next_token.is_some() {
        return Err(ApiError::client("InvalidTokenException", "Invalid NextToken: every tag fits in one page."));
    }
    let ids = input.resource_id_list.unwrap_or_default();
    if ids.len() > 20 {
        return Err(ApiError::client("InvalidParameterException", "ResourceIdList holds at most 20 ARNs."));
    }
    let trails = state.trails.all();
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        let index = tagged_trail(&trails, caller, &Some(id.clone()))?;
        list.push(json!({ "ResourceId": id, "TagsList": trails[index].tags }));
    }
    Output::read(&json!({ "ResourceTagList": list }))
}
